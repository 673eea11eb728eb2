//! The operator's bodies: tenants, their keys, and the plans
//! (`/v1/admin/…`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::model::format_ts;
use crate::stores::{ApiKey, Tenant};
use crate::tenants::NewKey;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    pub slug: String,
    /// The operator's default plan when absent.
    #[serde(default)]
    pub plan: Option<String>,
}

/// PATCH /v1/admin/tenants/{slug}.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    pub plan: Option<String>,
    /// `active` or `suspended`.
    pub state: Option<String>,
}

/// GET /v1/admin/plans.
#[derive(Serialize, ToSchema)]
pub struct PlanList {
    pub plans: BTreeMap<String, crate::tenants::plans::Plan>,
}

impl From<&crate::tenants::plans::Plans> for PlanList {
    fn from(plans: &crate::tenants::plans::Plans) -> Self {
        PlanList {
            plans: plans.iter().map(|(n, p)| (n.to_string(), p.clone())).collect(),
        }
    }
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// A key as minted: the secret is in this answer only.
#[derive(Serialize, ToSchema)]
pub struct NewKeyJson {
    pub id: String,
    pub key: String,
    pub scopes: Vec<&'static str>,
}

impl From<NewKey> for NewKeyJson {
    fn from(k: NewKey) -> Self {
        NewKeyJson {
            scopes: k.scopes.iter().map(|s| s.as_str()).collect(),
            id: k.id,
            key: k.secret,
        }
    }
}

/// 201 of POST /v1/admin/tenants.
#[derive(Serialize, ToSchema)]
pub struct TenantCreated {
    pub tenant: String,
    pub plan: String,
    pub api_key: NewKeyJson,
}

#[derive(Serialize, ToSchema)]
pub struct TenantJson {
    pub slug: String,
    pub created_at: String,
    pub plan: String,
    /// `active`, `suspended` or `deleting`.
    pub state: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct TenantList {
    pub tenants: Vec<TenantJson>,
}

impl From<Tenant> for TenantJson {
    fn from(t: Tenant) -> Self {
        TenantJson {
            created_at: format_ts(t.created_at),
            slug: t.slug,
            plan: t.plan,
            state: t.state.as_str(),
        }
    }
}

impl From<Vec<Tenant>> for TenantList {
    fn from(tenants: Vec<Tenant>) -> Self {
        TenantList {
            tenants: tenants.into_iter().map(TenantJson::from).collect(),
        }
    }
}

/// A key as listed: never its secret.
#[derive(Serialize, ToSchema)]
pub struct KeyJson {
    pub id: String,
    pub scopes: Vec<String>,
    pub created_at: String,
    pub revoked: bool,
}

#[derive(Serialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyJson>,
}

impl From<Vec<ApiKey>> for KeyList {
    fn from(keys: Vec<ApiKey>) -> Self {
        KeyList {
            keys: keys
                .into_iter()
                .map(|k| KeyJson {
                    created_at: format_ts(k.created_at),
                    id: k.id,
                    scopes: k.scopes,
                    revoked: k.revoked,
                })
                .collect(),
        }
    }
}
