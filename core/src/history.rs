//! A saga's history: every attempt of every call (when it began, how long it took, its outcome
//! and error), every status change and every operator command. Entries are appended to the
//! record, so they ride on the writes the saga makes anyway; the service crate's table moves
//! older ones to items of their own as the list grows. A choreographed saga's events are its
//! own log (`SagaRecord::events`) and join the history when it is read.

use crate::record::{Millis, SagaRecord, SagaStatus};
use serde::{Deserialize, Serialize};

/// Longest error text kept in a history entry, in bytes.
const MAX_ERROR_BYTES: usize = 300;

/// What an entry records.
#[derive(Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// One attempt of a call.
    Attempt,
    /// The saga's status changed.
    Status,
    /// An operator command (cancel, redrive).
    Command,
}

/// One entry of a saga's history.
#[derive(Serialize, Deserialize, Clone, PartialEq, Debug)]
pub struct HistoryEntry {
    /// When it happened (for an attempt: when it began).
    pub at: Millis,
    /// What it records.
    pub kind: EntryKind,
    /// The step of an attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// `action` or `compensation`, for an attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// The attempt's number, from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// How long the attempt took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub took_ms: Option<i64>,
    /// `succeeded`, a failure class, or `lost` (its invocation died before it reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The attempt's error (shortened).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The status the saga changed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SagaStatus>,
    /// The command (`cancel`, `redrive`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

impl HistoryEntry {
    fn new(at: Millis, kind: EntryKind) -> Self {
        Self {
            at,
            kind,
            step: None,
            phase: None,
            attempt: None,
            took_ms: None,
            outcome: None,
            error: None,
            status: None,
            command: None,
        }
    }

    fn is_attempt(&self, step: &str, phase: &str, attempt: u32) -> bool {
        self.kind == EntryKind::Attempt
            && self.step.as_deref() == Some(step)
            && self.phase.as_deref() == Some(phase)
            && self.attempt == Some(attempt)
    }
}

/// Notes that an attempt began.
pub fn attempt_began(record: &mut SagaRecord, step: &str, phase: &str, attempt: u32, now: Millis) {
    record.history.push(HistoryEntry {
        step: Some(step.to_string()),
        phase: Some(phase.to_string()),
        attempt: Some(attempt),
        ..HistoryEntry::new(now, EntryKind::Attempt)
    });
}

/// Notes how an attempt ended: on its entry when the record still holds it, else on a new one.
pub fn attempt_ended(
    record: &mut SagaRecord,
    (step, phase, attempt): (&str, &str, u32),
    outcome: &str,
    error: Option<&str>,
    now: Millis,
) {
    let error = error.map(shorten);
    let open = record
        .history
        .iter_mut()
        .rev()
        .find(|e| e.is_attempt(step, phase, attempt) && e.outcome.is_none());
    match open {
        Some(entry) => {
            entry.took_ms = Some(now - entry.at);
            entry.outcome = Some(outcome.to_string());
            entry.error = error;
        }
        None => record.history.push(HistoryEntry {
            step: Some(step.to_string()),
            phase: Some(phase.to_string()),
            attempt: Some(attempt),
            outcome: Some(outcome.to_string()),
            error,
            ..HistoryEntry::new(now, EntryKind::Attempt)
        }),
    }
}

/// Notes a status change, once per change, whoever wrote it; true when it was one.
pub fn note_status(record: &mut SagaRecord, now: Millis) -> bool {
    if record.logged_status == Some(record.status) {
        return false;
    }
    record.logged_status = Some(record.status);
    record.history.push(HistoryEntry {
        status: Some(record.status),
        ..HistoryEntry::new(now, EntryKind::Status)
    });
    true
}

/// Notes an operator command.
pub fn note_command(record: &mut SagaRecord, command: &str, now: Millis) {
    record.history.push(HistoryEntry {
        command: Some(command.to_string()),
        ..HistoryEntry::new(now, EntryKind::Command)
    });
}

fn shorten(error: &str) -> String {
    if error.len() <= MAX_ERROR_BYTES {
        return error.to_string();
    }
    let mut end = MAX_ERROR_BYTES;
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &error[..end])
}
