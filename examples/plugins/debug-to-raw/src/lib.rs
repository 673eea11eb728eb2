//! Example router: DEBUG and TRACE records are kept in the raw store only
//! (cheap, complete), everything else goes everywhere. Chatty debug logs
//! then cost neither index space nor metadata rows, yet stay retrievable.

use loggerhub_plugin_sdk::{Host, Level, Record, Route, Router};

pub struct DebugToRaw;

impl Router for DebugToRaw {
    fn route(batch: &[Record<'_>], _host: &dyn Host) -> Vec<Route> {
        batch
            .iter()
            .map(|r| {
                if r.level <= Level::Debug {
                    Route::raw_only()
                } else {
                    Route::all()
                }
            })
            .collect()
    }
}

loggerhub_plugin_sdk::export_router!(DebugToRaw, wit = "../../../wit");

#[cfg(test)]
mod tests {
    use super::*;
    use loggerhub_plugin_sdk::testing::TestHost;

    #[test]
    fn debug_goes_to_raw_only() {
        let rec = |level| Record {
            level,
            ..Record::default()
        };
        let routes = DebugToRaw::route(
            &[
                rec(Level::Trace),
                rec(Level::Debug),
                rec(Level::Info),
                rec(Level::Error),
            ],
            &TestHost::new(),
        );
        assert_eq!(
            routes,
            vec![Route::raw_only(), Route::raw_only(), Route::all(), Route::all()]
        );
    }
}
