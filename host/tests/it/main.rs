//! LoggerHub's integration tests, one binary: each module is one area, and
//! they share the harness in `common` (the real `loggerhub` binary over a
//! temp data dir, private servers) and the backend conformance suites.
//! One binary links the host once instead of once per area.
//!
//! The distributed backends are the real servers `make test` starts
//! (infra/local/services.sh); a test that needs one and finds it missing
//! fails, it never skips.

mod common;
mod conformance;

mod api;
mod boundaries;
mod cli;
mod crash;
mod dashboard;
mod distributed;
mod elastic;
mod encodings;
mod hostile;
mod infra;
mod lifecycle;
mod loki;
mod numbers;
mod openapi;
mod opensearch_fixtures;
mod otlp;
mod outages;
mod plans;
mod plugins;
mod rates;
mod readme;
mod roles;
mod sandbox;
mod saved;
mod sdk;
mod settings;
mod shipped;
mod stores;
mod syslog;
mod usage;
mod window;
