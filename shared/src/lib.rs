//! The saga orchestrator's service layer on AWS Lambda and DynamoDB: the ports with their
//! adapters, the worker that executes steps, the sweeper, the choreography monitor and the HTTP
//! API shared by the functions. The pure parts live in `saga-core` and are re-exported here, so
//! the functions depend on this crate alone.

pub use saga_core::{choreography, definition, engine, history, outcome, record, trace};

pub mod adapters;
pub mod api;
pub mod config;
pub mod definition_files;
pub mod invocation;
pub mod metrics;
pub mod monitor;
pub mod notifications;
pub mod payloads;
pub mod ports;
pub mod sweeper;
pub mod table;
pub mod telemetry;
pub mod timing;
pub mod usecases;
pub mod versions;
pub mod wiring;
pub mod worker;
pub mod xray;
