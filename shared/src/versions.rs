//! Definition versions kept beside the sagas, so every saga runs to its end under the version
//! of its definition it started with, whatever a later deploy changes or removes.
//!
//! Before the first saga of a deployed version starts, its file text is written to the table
//! (an item `definition#{type}#{version}`; once per process and version). A function that meets
//! a saga of another version reads that item back, parses it as it parses its own files, and
//! keeps it for the next sagas that need it.

use crate::definition::{AnyDefinition, Definitions, version_key};
use crate::ports::{SagaStore, StoreError};
use crate::record::SagaRecord;
use crate::table::SagaTable;

/// Why a saga's definition cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    /// The table failed; the same read may succeed later.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No version of the saga's definition can run it: the saga cannot go on.
    #[error("{0}")]
    Unrunnable(String),
}

/// Keeps the deployed version of `saga_type` in the table, unless this process did already.
pub async fn keep_deployed<S: SagaStore>(
    table: &SagaTable<S>,
    definitions: &Definitions,
    saga_type: &str,
) -> Result<(), StoreError> {
    let (Some(current), Some(text)) = (definitions.current(saga_type), definitions.text(saga_type))
    else {
        return Ok(());
    };
    if definitions.is_kept(saga_type, current.version()) {
        return Ok(());
    }
    table
        .keep_text(&version_key(saga_type, current.version()), text)
        .await?;
    definitions.keep_version(current);
    Ok(())
}

/// The definition a saga runs under (see [`definition_of`]), checked to hold the record's
/// steps, or why the saga cannot run: its version is lost, or its record's steps are not the
/// definition's. Only a store failure is an error.
pub async fn runnable_definition<S: SagaStore>(
    table: &SagaTable<S>,
    definitions: &Definitions,
    record: &SagaRecord,
) -> Result<Result<AnyDefinition, String>, StoreError> {
    match definition_of(table, definitions, record).await {
        Ok(def) => Ok(record.check_steps(def.step_names()).map(|()| def)),
        Err(VersionError::Unrunnable(reason)) => Ok(Err(reason)),
        Err(VersionError::Store(e)) => Err(e),
    }
}

/// The definition a saga runs under: the version it started with (the deployed one, one kept
/// in memory, or one read back from the table), or the deployed one for a record without a
/// version.
pub async fn definition_of<S: SagaStore>(
    table: &SagaTable<S>,
    definitions: &Definitions,
    record: &SagaRecord,
) -> Result<AnyDefinition, VersionError> {
    let saga_type = &record.saga_type;
    let Some(version) = &record.definition_version else {
        return definitions.current(saga_type).ok_or_else(|| {
            VersionError::Unrunnable(format!("saga type {saga_type} is not deployed"))
        });
    };
    version_of(table, definitions, saga_type, version).await
}

/// Version `version` of `saga_type`'s definition: the deployed one, one kept in memory, or one
/// read back from the table (then kept in memory).
pub async fn version_of<S: SagaStore>(
    table: &SagaTable<S>,
    definitions: &Definitions,
    saga_type: &str,
    version: &str,
) -> Result<AnyDefinition, VersionError> {
    if let Some(found) = definitions.version(saga_type, version) {
        return Ok(found);
    }
    let Some(text) = table.text(&version_key(saga_type, version)).await? else {
        return Err(VersionError::Unrunnable(format!(
            "version {version} of the definition of {saga_type} is neither deployed nor kept \
             in the table"
        )));
    };
    let found = definitions.parse_version(&text).map_err(|e| {
        VersionError::Unrunnable(format!(
            "version {version} of the definition of {saga_type} no longer loads: {e}"
        ))
    })?;
    if found.saga_type() != saga_type || found.version() != version {
        return Err(VersionError::Unrunnable(format!(
            "the item kept for version {version} of {saga_type} holds version {} of {}",
            found.version(),
            found.saga_type()
        )));
    }
    definitions.keep_version(found.clone());
    Ok(found)
}
