//! Operator commands on one saga: cancel, redrive, pause and resume.
//!
//! Each is a conditional write of the record; run-step acts on them. A saga that is not leased
//! becomes runnable at once (a paused one instead leaves the stream and the sweeper alone); the
//! invocation holding a leased one finds the command at its next write, merges it and goes on.

use super::change::{Change, ChangeError, change_record};
use crate::definition::{Definitions, SagaDefinition};
use crate::engine::{self, Refused};
use crate::ports::{Clock, SagaStore, StoreError};
use crate::record::SagaRecord;
use crate::stored::Stored;
use crate::table::SagaTable;

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
    /// Start no new call until resumed.
    Pause,
    /// Go on from where a pause stopped.
    Resume,
}

impl Command {
    /// Its name in the history and in routes.
    pub fn name(self) -> &'static str {
        match self {
            Command::Cancel => "cancel",
            Command::Redrive => "redrive",
            Command::Pause => "pause",
            Command::Resume => "resume",
        }
    }
}

/// Why a command was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// No saga has this id.
    #[error("no saga with id {0}")]
    NotFound(String),
    /// Choreographed sagas are driven by their participants' events.
    #[error(
        "this saga is choreographed: its participants' events drive it, so operator commands \
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
) -> Result<Stored, CommandError> {
    let change = |(def, record, now): Change<'_>| {
        if record.choreographed {
            return Err(CommandError::Choreographed);
        }
        match command {
            // A repeated cancel is recorded already: nothing to write.
            Command::Cancel if record.cancel_requested && !record.status.is_terminal() => {
                return Ok(false);
            }
            Command::Cancel => cancel(def, record)?,
            Command::Redrive => engine::redrive(record)?,
            // A repeated pause is recorded already: nothing to write.
            Command::Pause if !engine::pause(record)? => return Ok(false),
            Command::Pause => {}
            Command::Resume => engine::resume(record)?,
        }
        crate::history::note_command(&mut record.history, command.name(), now);
        if record.is_leased(now) {
            // The holder merges the command at its next write.
        } else if record.paused {
            // Its retry or wait times stay in its steps for the resume.
            record.runnable = false;
            record.wake_at = None;
        } else {
            crate::engine::driver::hand_on(record);
        }
        // Recomputed: a leased saga is then due when its lease expires.
        record.due_at = None;
        Ok(true)
    };
    change_record(&deps.table, &deps.definitions, &deps.clock, id, change).await
}

impl ChangeError for CommandError {
    fn missing(id: &str) -> Self {
        CommandError::NotFound(id.to_string())
    }
    fn kept_changing() -> Self {
        CommandError::KeptChanging
    }
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
    // A cancel goes on from a pause: the saga compensates.
    record.paused = false;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{ManualClock, MemoryStore};
    use crate::engine::new_record;
    use crate::table::TableRules;
    use serde_json::json;

    async fn stored_saga() -> (CommandDeps<MemoryStore, ManualClock>, String) {
        let definitions = Definitions::from_files(
            [(
                "image.json",
                include_str!("../../../definitions/image.json"),
            )],
            |_| Some("http://p/".into()),
        )
        .unwrap();
        let table = SagaTable::new(MemoryStore::default(), TableRules::default());
        let def = definitions.get("image").unwrap();
        let mut record = Stored::from(new_record(def, "s-1".into(), json!({}), 1_000));
        table.create(&mut record, 1_000).await.unwrap();
        let deps = CommandDeps {
            table,
            clock: ManualClock::at(2_000),
            definitions,
        };
        (deps, "s-1".into())
    }

    #[tokio::test]
    async fn a_pause_takes_an_idle_saga_off_the_stream_and_the_sweeper_until_resumed() {
        let (deps, id) = stored_saga().await;
        let paused = run(&deps, &id, Command::Pause).await.unwrap();
        assert!(paused.paused && !paused.runnable);
        assert_eq!((paused.due_at, paused.sweep_shard), (None, None));
        let again = run(&deps, &id, Command::Pause).await.unwrap();
        assert_eq!(
            again.version, paused.version,
            "a repeated pause writes nothing"
        );
        let resumed = run(&deps, &id, Command::Resume).await.unwrap();
        assert!(!resumed.paused && resumed.runnable && resumed.due_at.is_some());
        let commands: Vec<_> = resumed
            .history
            .iter()
            .filter_map(|e| e.command.clone())
            .collect();
        assert_eq!(commands, ["pause", "resume"]);
        let refused = run(&deps, &id, Command::Resume).await.unwrap_err();
        assert!(matches!(refused, CommandError::Refused(Refused::NotPaused)));
    }

    #[tokio::test]
    async fn a_cancel_goes_on_from_a_pause() {
        let (deps, id) = stored_saga().await;
        run(&deps, &id, Command::Pause).await.unwrap();
        let cancelled = run(&deps, &id, Command::Cancel).await.unwrap();
        assert!(cancelled.cancel_requested && !cancelled.paused && cancelled.runnable);
    }
}
