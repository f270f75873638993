//! Operator commands on one saga: cancel and redrive.
//!
//! Both are a conditional write of the record; run-step acts on them. A cancelled saga that
//! is not leased becomes runnable at once; one whose call is in flight is taken over when its
//! lease expires (the invocation holding it stops at its next write, which now fails).

use crate::definition::{AnyDefinition, Definitions, SagaDefinition};
use crate::engine::{self, Refused};
use crate::ports::{Clock, SagaStore, StoreError};
use crate::record::SagaRecord;
use crate::table::SagaTable;
use crate::versions::{self, VersionError};

/// What the command function needs.
pub struct CommandDeps<S, C> {
    /// The saga table.
    pub table: SagaTable<S>,
    /// Time source.
    pub clock: C,
    /// Deployed definitions (to know each saga's pivot, under the version it runs).
    pub definitions: Definitions,
}

/// An operator command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// Stop going forward and compensate.
    Cancel,
    /// Resume a FAILED saga where it gave up.
    Redrive,
}

/// Why a command was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// No saga has this id.
    #[error("no saga with id {0}")]
    NotFound(String),
    /// Choreographed sagas are driven by their participants' events.
    #[error(
        "this saga is choreographed: its participants' events drive it, so cancel and redrive \
         do not apply; its compensation commands go out on its command topic"
    )]
    Choreographed,
    /// The saga's state does not allow it.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The record changed under every attempt.
    #[error("the saga kept changing; retry the command")]
    KeptChanging,
    /// The table failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads the saga, applies the command, and writes it back conditionally (retrying a few times
/// if run-step wrote in between). Returns the saga as written.
pub async fn run<S: SagaStore, C: Clock>(
    deps: &CommandDeps<S, C>,
    id: &str,
    command: Command,
) -> Result<SagaRecord, CommandError> {
    for _ in 0..5 {
        let mut record = deps
            .table
            .get_bare(id)
            .await?
            .ok_or_else(|| CommandError::NotFound(id.to_string()))?;
        if record.choreographed {
            return Err(CommandError::Choreographed);
        }
        match command {
            // A repeated cancel is recorded already: nothing to write.
            Command::Cancel if record.cancel_requested && !record.status.is_terminal() => {
                return Ok(record);
            }
            Command::Cancel => {
                let def = match versions::definition_of(&deps.table, &deps.definitions, &record)
                    .await
                {
                    Ok(AnyDefinition::Orchestrated(def)) => Some(def),
                    Ok(AnyDefinition::Choreographed(_)) | Err(VersionError::Unrunnable(_)) => None,
                    Err(VersionError::Store(e)) => return Err(e.into()),
                };
                cancel(def.as_deref(), &mut record)?
            }
            Command::Redrive => engine::redrive(&mut record)?,
        }
        let now = deps.clock.now();
        let name = match command {
            Command::Cancel => "cancel",
            Command::Redrive => "redrive",
        };
        crate::history::note_command(&mut record.history, name, now);
        if !record.is_leased(now) {
            crate::engine::driver::hand_on(&mut record);
        }
        // Recomputed: a leased saga is then due when its lease expires.
        record.due_at = None;
        match deps.table.update(&mut record, now).await {
            Ok(_) => return Ok(record),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(CommandError::KeptChanging)
}

/// Records a cancel under the saga's own definition version (`None` when it cannot be had:
/// run-step then fails the saga with the reason).
fn cancel(def: Option<&SagaDefinition>, record: &mut SagaRecord) -> Result<(), Refused> {
    match def {
        Some(def) => engine::check_cancel(def, record)?,
        None if record.status.is_terminal() => {
            return Err(Refused::Finished(record.status.as_str()));
        }
        None => {}
    }
    record.cancel_requested = true;
    Ok(())
}
