//! Adapters for the ports: the real ones used by the functions and in-memory ones for tests.

pub mod memory;
