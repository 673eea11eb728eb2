//! Run a plugin's logic natively, without WebAssembly, in unit tests.
//!
//! ```
//! use loggerhub_plugin_sdk::testing::TestHost;
//! let host = TestHost::new().with_config("region", "eu");
//! assert_eq!(loggerhub_plugin_sdk::Host::config(&host, "region").as_deref(), Some("eu"));
//! ```

use std::cell::RefCell;
use std::collections::HashMap;

use crate::{Host, Level};

/// A [`Host`] that serves configuration from a map and records log lines.
#[derive(Debug, Default)]
pub struct TestHost {
    config: HashMap<String, String>,
    logs: RefCell<Vec<(Level, String)>>,
}

impl TestHost {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_config(mut self, key: &str, value: &str) -> Self {
        self.config.insert(key.to_string(), value.to_string());
        self
    }

    /// Every line the plugin logged, in order.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.logs.borrow().clone()
    }
}

impl Host for TestHost {
    fn log(&self, level: Level, message: &str) {
        self.logs.borrow_mut().push((level, message.to_string()));
    }

    fn config(&self, key: &str) -> Option<String> {
        self.config.get(key).cloned()
    }
}
