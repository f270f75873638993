//! What every function's cold start shares: its error and the definitions it runs. The
//! adapters are built beside them, in the crates that hold them.

use crate::config::{Config, ConfigError};
use crate::definition::{Definitions, LoadError};
use crate::definition_files;

/// Why a function cannot start: a setting, a definition it cannot use, or an adapter that
/// cannot be built (the Pulsar token's secret cannot be read).
#[derive(Debug, thiserror::Error)]
pub enum ColdStartError {
    /// A setting is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A definition file is invalid.
    #[error(transparent)]
    Definitions(#[from] LoadError),
    /// An adapter cannot be built.
    #[error(transparent)]
    Adapter(Box<dyn std::error::Error + Send + Sync>),
}

/// The definitions the function runs: the bundled ones, or those of `SAGA_DEFINITIONS_DIR`.
pub fn definitions(config: &Config) -> Result<Definitions, LoadError> {
    definition_files::load(
        config.definitions_dir.as_deref(),
        config.step_time_limit_ms(),
    )
}
