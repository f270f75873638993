//! The pure core of the saga orchestrator: the saga record, definitions, the engine that decides
//! every transition, and the rules of choreographed sagas. Nothing here does I/O: callers pass
//! the time and the outcomes of calls, and this crate depends on no I/O library, so the compiler
//! keeps it that way.

pub mod call;
pub mod callback;
pub mod choreography;
pub mod cost;
pub mod definition;
pub mod engine;
pub mod event_log;
pub mod history;
mod json_text;
pub mod outcome;
pub mod record;
pub mod stats;
pub mod status;
pub mod trace;
