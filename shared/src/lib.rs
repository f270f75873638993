//! The saga orchestrator's service layer on AWS Lambda: the ports, the worker that executes
//! steps, the sweeper, the choreography monitor, the table and the HTTP API shared by the
//! functions, with in-memory adapters for tests. The adapters to AWS, Pulsar and HTTP
//! participants live in crates of their own under `adapters/`, so each function links only
//! those it uses. The pure parts live in `saga-core` and are re-exported here.

pub use saga_core::{
    callback, choreography, cost, definition, engine, history, outcome, record, stats, trace,
};

pub mod adapters;
pub mod cold_start;
pub mod config;
pub mod definition_files;
pub mod invocation;
pub mod metrics;
pub mod monitor;
pub mod notifications;
pub mod payloads;
pub mod ports;
pub mod stored;
pub mod sweeper;
pub mod table;
pub mod telemetry;
pub mod time_text;
pub mod timing;
pub mod usecases;
pub mod versions;
pub mod worker;
pub mod xray;
