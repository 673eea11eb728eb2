//! Saved searches: a tenant's searches kept under a name (docs/API.md,
//! "Saved searches"). The API checks the query and the filters (it knows
//! the query language); here the name and the count are checked, and the
//! search is kept in the account store.

use super::{TenantError, Tenants};
use crate::model;
use crate::stores::{Saved, SavedSearch};

/// Most searches a tenant keeps: a list a person picks from, bounded like
/// everything a tenant stores.
pub const MAX_SAVED_SEARCHES: usize = 200;
/// Longest name, in bytes.
pub const MAX_SAVED_NAME_BYTES: usize = 64;

/// A name: a lowercase letter or digit, then letters, digits, `-`, `_`
/// or `.`: it goes in a URL path and a CLI argument as it is.
pub fn valid_saved_name(name: &str) -> bool {
    let b = name.as_bytes();
    (1..=MAX_SAVED_NAME_BYTES).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_' | b'.'))
}

impl Tenants {
    /// Keeps `query` and `filters` (a JSON object the API checked) under
    /// `name`, replacing the tenant's search of that name; true when new.
    pub async fn save_search(&self, tenant: &str, name: &str, query: &str, filters: &str) -> Result<bool, TenantError> {
        if !valid_saved_name(name) {
            return Err(TenantError::BadSavedName(name.to_string()));
        }
        self.ensure_exists(tenant).await?;
        let now = model::now_ns();
        let s = SavedSearch {
            tenant: tenant.to_string(),
            name: name.to_string(),
            query: query.to_string(),
            filters: filters.to_string(),
            created_at: now,
            updated_at: now,
        };
        match self.store.put_saved_search(&s, MAX_SAVED_SEARCHES).await? {
            Saved::Created => Ok(true),
            Saved::Replaced => Ok(false),
            Saved::Full => Err(TenantError::TooManySavedSearches(MAX_SAVED_SEARCHES)),
        }
    }

    pub async fn saved_searches(&self, tenant: &str) -> Result<Vec<SavedSearch>, TenantError> {
        Ok(self.store.list_saved_searches(tenant).await?)
    }

    pub async fn saved_search(&self, tenant: &str, name: &str) -> Result<SavedSearch, TenantError> {
        let none = || TenantError::NoSavedSearch(name.to_string());
        if !valid_saved_name(name) {
            return Err(none());
        }
        self.store.get_saved_search(tenant, name).await?.ok_or_else(none)
    }

    pub async fn delete_saved_search(&self, tenant: &str, name: &str) -> Result<(), TenantError> {
        if !valid_saved_name(name) || !self.store.delete_saved_search(tenant, name).await? {
            return Err(TenantError::NoSavedSearch(name.to_string()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_a_path_and_an_argument() {
        for ok in ["errors", "5xx", "checkout.errors", "a-b_c", &"x".repeat(64)] {
            assert!(valid_saved_name(ok), "{ok}");
        }
        for bad in [
            "",
            "Errors",
            "-x",
            "_x",
            "a b",
            "a/b",
            "..",
            "é",
            &"x".repeat(65),
            "a%2f",
        ] {
            assert!(!valid_saved_name(bad), "{bad}");
        }
    }
}
