//! Saga orchestration on AWS Lambda and DynamoDB: the record, the pure engine, the ports with
//! their adapters, the worker that executes steps, and the HTTP API shared by the functions.

pub mod adapters;
pub mod api;
pub mod choreography;
pub mod definition;
pub mod engine;
pub mod metrics;
pub mod ports;
pub mod record;
pub mod sweeper;
pub mod telemetry;
pub mod trace;
pub mod wiring;
pub mod worker;
