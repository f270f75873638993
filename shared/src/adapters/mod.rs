//! Adapters for the ports: the real ones used by the functions and in-memory ones for tests.

pub mod dynamodb;
pub mod eventbridge;
pub mod http;
pub mod memory;
pub mod pulsar;
pub mod secrets;
pub mod tls;
