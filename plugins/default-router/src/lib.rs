//! Built-in router: every record goes to the metadata store, the raw store
//! and the search index.

use loggerhub_plugin_sdk::{Host, Record, Route, Router};

pub struct DefaultRouter;

impl Router for DefaultRouter {
    fn route(batch: &[Record<'_>], _host: &dyn Host) -> Vec<Route> {
        batch.iter().map(|_| Route::all()).collect()
    }
}

loggerhub_plugin_sdk::export_router!(DefaultRouter, wit = "../../wit");

#[cfg(test)]
mod tests {
    use super::*;
    use loggerhub_plugin_sdk::testing::TestHost;

    #[test]
    fn one_route_per_record_to_every_store() {
        let batch = vec![Record::default(); 3];
        let routes = DefaultRouter::route(&batch, &TestHost::new());
        assert_eq!(routes, vec![Route::all(); 3]);
    }
}
