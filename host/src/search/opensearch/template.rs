//! The index template shipped with the binary, and a tenant's index
//! created from it (provisioning).

use std::sync::atomic::Ordering;

use opensearch::indices::{IndicesCreateParts, IndicesPutIndexTemplateParts, IndicesPutMappingParts};
use serde_json::Value;

use super::answers::{answer, expect_ok};
use super::{OpenSearchIndex, corrupt, os_err};
use crate::error::BackendError;
use crate::search::SearchIndex;

/// The index template, shipped with the binary so that every tenant index
/// is created exactly as `infra/` describes it.
pub const TEMPLATE: &str = include_str!("../../../../infra/opensearch/logs-template.json");
const TEMPLATE_NAME: &str = "loggerhub-logs";

impl OpenSearchIndex {
    /// Installs (or updates) the index template, so that indices created
    /// outside LoggerHub under the default prefix get the same mappings.
    async fn install_template(&self) -> Result<(), BackendError> {
        let body: Value = serde_json::from_str(TEMPLATE).map_err(|e| corrupt(format!("template: {e}")))?;
        let resp = self
            .client
            .indices()
            .put_index_template(IndicesPutIndexTemplateParts::Name(TEMPLATE_NAME))
            .body(body)
            .send()
            .await
            .map_err(os_err)?;
        expect_ok::<Value>(resp).await.map(drop)
    }

    pub(super) async fn ensure(&self, tenant: &str) -> Result<(), BackendError> {
        if self.provisioned.lock().contains(tenant) {
            return Ok(());
        }
        self.provision(tenant).await
    }

    /// `SearchIndex::provision`: the template installed once per process,
    /// then the tenant's index created from it (or found there already).
    pub(super) async fn provision_tenant(&self, tenant: &str) -> Result<(), BackendError> {
        if !self.template_installed.load(Ordering::Relaxed) {
            self.install_template().await?;
            self.template_installed.store(true, Ordering::Relaxed);
        }
        let template: Value = serde_json::from_str(TEMPLATE).map_err(|e| corrupt(format!("template: {e}")))?;
        let index = self.index_name(tenant);
        let resp = self
            .client
            .indices()
            .create(IndicesCreateParts::Index(&index))
            .body(template["template"].clone())
            .send()
            .await
            .map_err(os_err)?;
        match answer::<Value>(resp).await? {
            Ok(_) => {}
            // An index made by an older version: the template's fields
            // added (a mapping only grows; `attr` came with counting).
            Err(f) if f.is("resource_already_exists_exception") => {
                let resp = self
                    .client
                    .indices()
                    .put_mapping(IndicesPutMappingParts::Index(&[&index]))
                    .body(template["template"]["mappings"].clone())
                    .send()
                    .await
                    .map_err(os_err)?;
                expect_ok::<Value>(resp).await?;
            }
            Err(f) => return Err(f.into()),
        }
        self.provisioned.lock().insert(tenant.to_string());
        Ok(())
    }
}
