//! What the API does, apart from HTTP: start a saga, list sagas, command a saga, take a
//! participant's answer. Each use case
//! takes its dependencies and plain inputs and returns records or its own error; `api/` maps
//! requests to them and their errors to problem responses.

pub mod answers;
mod change;
pub mod command;
pub mod list;
pub mod start;
pub mod stats;
