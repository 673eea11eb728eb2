//! Tenants and their API keys: key minting and hashing, scopes, the
//! authentication cache in front of the metadata store, and the plans
//! tenants are on (`plans`).
//!
//! **Invariant:** a key's secret is shown once and stored only as its
//! SHA-256; tenants depend on `stores`, `model` and `error` alone.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use rand::Rng;
use sha2::{Digest, Sha256};

pub mod plans;
pub mod saved;

use plans::{PlanError, PlanName, Plans};

use crate::error::BackendError;
use crate::model::{self, BadSlug, Slug};
use crate::stores::{AccountStore, ApiKey, Tenant, TenantState};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    Ingest,
    Search,
    Plugins,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Ingest, Scope::Search, Scope::Plugins];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Search => "search",
            Scope::Plugins => "plugins",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Who a request comes from, once its key checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: String,
    /// The tenant's plan, as of the lookup (at most `AUTH_CACHE_TTL` old).
    pub plan: String,
    pub key_id: String,
    pub scopes: Vec<Scope>,
    /// Active or suspended (a deleting tenant's keys authenticate no one).
    pub state: TenantState,
}

impl Principal {
    pub fn can(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error(transparent)]
    BadSlug(#[from] BadSlug),
    #[error("tenant {0:?} already exists")]
    Exists(String),
    #[error("no tenant {0:?}")]
    NoTenant(String),
    #[error("unknown scope {0:?} (expected ingest, search or plugins)")]
    BadScope(String),
    #[error("tenant {0:?} is being deleted")]
    Deleting(String),
    #[error("a tenant is suspended or resumed here; deleting is DELETE /v1/admin/tenants/{{slug}}")]
    BadState,
    #[error("no key {0:?}")]
    NoKey(String),
    #[error("a saved search's name is 1 to 64 of a-z, 0-9, -, _ and ., starting with a letter or digit; got {0:?}")]
    BadSavedName(String),
    #[error("no saved search {0:?}")]
    NoSavedSearch(String),
    #[error("a tenant keeps at most {0} saved searches: delete one first")]
    TooManySavedSearches(usize),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Store(#[from] BackendError),
}

pub fn hash_key(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Key ids are `key_` and a lowercase ULID.
pub fn valid_key_id(s: &str) -> bool {
    s.strip_prefix("key_")
        .is_some_and(|u| u.len() == 26 && u.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
}

/// What every tenant key starts with: tells a key from other credentials
/// (and makes a leaked one easy to scan for).
pub const KEY_PREFIX: &str = "lh_";

/// A fresh key: `lh_` + 40 random base62 characters (238 bits).
fn mint_secret() -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    let body: String = (0..40)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{KEY_PREFIX}{body}")
}

/// A key as minted: the secret is shown once and never stored.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub id: String,
    pub secret: String,
    pub scopes: Vec<Scope>,
}

/// How long a successful key lookup is trusted before the store is asked
/// again; bounds how late a revocation made by another node takes effect.
const AUTH_CACHE_TTL: Duration = Duration::from_secs(5);
/// While the metadata store is unreachable, a key it confirmed within this
/// long keeps working: an outage of the store must not stop ingest, whose
/// batches wait in the queue. (A key revoked during the outage works until
/// the store answers again or this runs out.)
const AUTH_STALE_GRACE: Duration = Duration::from_secs(15 * 60);

pub struct Tenants {
    store: Arc<dyn AccountStore>,
    plans: Arc<Plans>,
    cache: RwLock<HashMap<String, (Instant, Option<Principal>)>>,
}

impl Tenants {
    pub fn new(store: Arc<dyn AccountStore>, plans: Arc<Plans>) -> Self {
        Tenants {
            store,
            plans,
            cache: RwLock::new(HashMap::new()),
        }
    }

    /// The operator's plans.
    pub fn plans(&self) -> &Plans {
        &self.plans
    }

    /// Creates a tenant on one of the operator's plans, and its first key
    /// (all scopes).
    pub async fn create(&self, slug: &Slug, plan: &str) -> Result<NewKey, TenantError> {
        let plan = self.plan_name(plan)?;
        let slug = slug.as_str();
        if !self.store.create_tenant(slug, plan.as_str()).await? {
            return Err(TenantError::Exists(slug.to_string()));
        }
        self.mint(slug, &Scope::ALL).await
    }

    pub async fn list(&self) -> Result<Vec<Tenant>, TenantError> {
        Ok(self.store.list_tenants().await?)
    }

    /// Moves a tenant to another of the operator's plans.
    pub async fn set_plan(&self, slug: &Slug, plan: &str) -> Result<PlanName, TenantError> {
        let plan = self.plan_name(plan)?;
        if !self.store.set_plan(slug.as_str(), plan.as_str()).await? {
            return Err(TenantError::NoTenant(slug.as_str().to_string()));
        }
        self.forget(slug.as_str());
        tracing::info!(tenant = slug.as_str(), plan = plan.as_str(), "tenant plan changed");
        Ok(plan)
    }

    /// Suspends (ingest refused, reads allowed) or resumes a tenant.
    pub async fn set_state(&self, slug: &Slug, state: TenantState) -> Result<Tenant, TenantError> {
        if state == TenantState::Deleting {
            return Err(TenantError::BadState);
        }
        let t = self.get(slug.as_str()).await?;
        if t.state == TenantState::Deleting {
            return Err(TenantError::Deleting(t.slug));
        }
        if !self.store.set_state(slug.as_str(), state).await? {
            return Err(TenantError::NoTenant(slug.as_str().to_string()));
        }
        self.forget(slug.as_str());
        tracing::info!(tenant = slug.as_str(), state = state.as_str(), "tenant state changed");
        self.get(slug.as_str()).await
    }

    /// Starts deleting a tenant: its keys stop working now, and the upkeep
    /// job removes its data from every store, then the tenant itself.
    pub async fn delete(&self, slug: &Slug) -> Result<Tenant, TenantError> {
        let t = self.get(slug.as_str()).await?;
        if t.state != TenantState::Deleting && !self.store.set_state(slug.as_str(), TenantState::Deleting).await? {
            return Err(TenantError::NoTenant(slug.as_str().to_string()));
        }
        self.forget(slug.as_str());
        tracing::info!(tenant = slug.as_str(), "tenant deletion started");
        self.get(slug.as_str()).await
    }

    /// Drops what the authentication cache holds for a tenant, so a change
    /// of its state applies here at once (elsewhere within `AUTH_CACHE_TTL`).
    fn forget(&self, slug: &str) {
        self.cache
            .write()
            .retain(|_, (_, p)| p.as_ref().is_none_or(|p| p.tenant != slug));
    }

    fn plan_name(&self, plan: &str) -> Result<PlanName, TenantError> {
        Ok(self.plans.get(plan)?.0.clone())
    }

    async fn ensure_exists(&self, slug: &str) -> Result<(), TenantError> {
        self.get(slug).await.map(|_| ())
    }

    pub async fn get(&self, slug: &str) -> Result<Tenant, TenantError> {
        self.store
            .get_tenant(slug)
            .await?
            .ok_or_else(|| TenantError::NoTenant(slug.to_string()))
    }

    /// The plan called `name`; one the operator has since removed counts as
    /// the default plan.
    pub fn plan(&self, name: &str) -> &plans::Plan {
        if self.plans.get(name).is_err() {
            tracing::warn!(
                plan = name,
                "tenant on a plan the operator no longer defines; using the default"
            );
        }
        self.plans.resolve(name)
    }

    /// Adds a key with `scopes` to an existing tenant.
    pub async fn create_key(&self, slug: &Slug, scopes: &[String]) -> Result<NewKey, TenantError> {
        let slug = slug.as_str();
        let scopes = if scopes.is_empty() {
            Scope::ALL.to_vec()
        } else {
            scopes
                .iter()
                .map(|s| Scope::parse(s).ok_or_else(|| TenantError::BadScope(s.clone())))
                .collect::<Result<Vec<_>, _>>()?
        };
        self.ensure_exists(slug).await?;
        self.mint(slug, &scopes).await
    }

    async fn mint(&self, slug: &str, scopes: &[Scope]) -> Result<NewKey, TenantError> {
        let secret = mint_secret();
        let id = format!("key_{}", ulid::Ulid::new().to_string().to_lowercase());
        self.store
            .insert_key(&ApiKey {
                id: id.clone(),
                tenant: slug.to_string(),
                hash: hash_key(&secret),
                scopes: scopes.iter().map(|s| s.as_str().to_string()).collect(),
                created_at: model::now_ns(),
                revoked: false,
            })
            .await?;
        Ok(NewKey {
            id,
            secret,
            scopes: scopes.to_vec(),
        })
    }

    pub async fn list_keys(&self, slug: &Slug) -> Result<Vec<ApiKey>, TenantError> {
        let slug = slug.as_str();
        self.ensure_exists(slug).await?;
        Ok(self.store.list_keys(slug).await?)
    }

    pub async fn revoke_key(&self, slug: &Slug, key_id: &str) -> Result<(), TenantError> {
        let slug = slug.as_str();
        if !self.store.revoke_key(slug, key_id).await? {
            return Err(TenantError::NoKey(key_id.to_string()));
        }
        self.cache
            .write()
            .retain(|_, (_, p)| p.as_ref().is_none_or(|p| p.key_id != key_id));
        Ok(())
    }

    /// The principal behind a bearer secret, or None for unknown or revoked
    /// keys.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<Principal>, TenantError> {
        if !secret.starts_with(KEY_PREFIX) || secret.len() > 128 {
            return Ok(None);
        }
        let hash = hash_key(secret);
        if let Some((at, p)) = self.cache.read().get(&hash)
            && at.elapsed() < AUTH_CACHE_TTL
        {
            return Ok(p.clone());
        }
        let lookup = async {
            let Some(key) = self.store.find_key(&hash).await? else {
                return Ok(None);
            };
            let tenant = self.store.get_tenant(&key.tenant).await?;
            let state = tenant.as_ref().map_or(TenantState::Active, |t| t.state);
            let plan = tenant.map_or_else(|| self.plans.default_name().to_string(), |t| t.plan);
            Ok::<_, BackendError>(Some((key, plan, state)))
        };
        let found = match lookup.await {
            Ok(found) => found,
            Err(e) => {
                if let Some((at, Some(p))) = self.cache.read().get(&hash)
                    && at.elapsed() < AUTH_STALE_GRACE
                {
                    tracing::warn!(tenant = p.tenant, error = %e, "metadata store unreachable; using the cached key");
                    return Ok(Some(p.clone()));
                }
                return Err(e.into());
            }
        };
        let principal = found
            .filter(|(k, _, state)| !k.revoked && *state != TenantState::Deleting)
            .map(|(k, plan, state)| Principal {
                tenant: k.tenant,
                plan,
                key_id: k.id,
                scopes: k.scopes.iter().filter_map(|s| Scope::parse(s)).collect(),
                state,
            });
        let mut cache = self.cache.write();
        // Unknown keys are cached too, so a flood of bad keys cannot reach
        // the store; the map is bounded by clearing it when large.
        if cache.len() > 100_000 {
            cache.clear();
        }
        cache.insert(hash, (Instant::now(), principal.clone()));
        Ok(principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_unique_and_hashes_stable() {
        let a = mint_secret();
        assert!(a.starts_with("lh_") && a.len() == 43);
        assert_ne!(a, mint_secret());
        assert_eq!(hash_key("lh_x"), hash_key("lh_x"));
        assert_eq!(hash_key("lh_x").len(), 64);
    }
}
