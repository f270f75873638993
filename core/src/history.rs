//! A saga's history: every attempt of every call (when it began, how long it took, its outcome
//! and error), every status change and every operator command. Entries are appended to the
//! record's list (status changes by `SagaRecord::note_status`), so they ride on the writes the
//! saga makes anyway; the service crate's table moves
//! older ones to items of their own as the list grows. A choreographed saga's events are its
//! own log (`SagaRecord::events`) and join the history when it is read.

use crate::status::{Millis, SagaStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

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
    /// An operator command (cancel, redrive, pause, resume).
    Command,
    /// A step that ran no call: `skipped` (its condition was false), `waiting` (a wait
    /// began), `waited` (it ended).
    Step,
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

    /// The entry of a change to `status`.
    pub fn status_change(status: SagaStatus, at: Millis) -> Self {
        Self {
            status: Some(status),
            ..Self::new(at, EntryKind::Status)
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
pub fn attempt_began(
    history: &mut Vec<HistoryEntry>,
    step: &str,
    phase: &str,
    attempt: u32,
    now: Millis,
) {
    history.push(HistoryEntry {
        step: Some(step.to_string()),
        phase: Some(phase.to_string()),
        attempt: Some(attempt),
        ..HistoryEntry::new(now, EntryKind::Attempt)
    });
}

/// Notes how an attempt ended: on its entry when the list still holds it, else on a new one.
pub fn attempt_ended(
    history: &mut Vec<HistoryEntry>,
    (step, phase, attempt): (&str, &str, u32),
    outcome: &str,
    error: Option<&str>,
    now: Millis,
) {
    let error = error.map(shorten);
    let open = history
        .iter_mut()
        .rev()
        .find(|e| e.is_attempt(step, phase, attempt) && e.outcome.is_none());
    match open {
        Some(entry) => {
            entry.took_ms = Some(now - entry.at);
            entry.outcome = Some(outcome.to_string());
            entry.error = error;
        }
        None => history.push(HistoryEntry {
            step: Some(step.to_string()),
            phase: Some(phase.to_string()),
            attempt: Some(attempt),
            outcome: Some(outcome.to_string()),
            error,
            ..HistoryEntry::new(now, EntryKind::Attempt)
        }),
    }
}

/// Notes what a step did without a call (`outcome`: `skipped`, `waiting`, `waited`).
pub fn step_note(history: &mut Vec<HistoryEntry>, step: &str, outcome: &str, now: Millis) {
    history.push(HistoryEntry {
        step: Some(step.to_string()),
        outcome: Some(outcome.to_string()),
        ..HistoryEntry::new(now, EntryKind::Step)
    });
}

/// Notes an operator command.
pub fn note_command(history: &mut Vec<HistoryEntry>, command: &str, now: Millis) {
    history.push(HistoryEntry {
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

/// The stored form of a list of entries: JSON text, compact, since it rides on every write.
///
/// Each entry is an array: `[at, "s", status]`, `[at, "c", command]`, `[at, "n", step,
/// outcome]` for a step without a call, or an attempt `[at, "a"
/// (action) or "u" (compensation), step, attempt, took_ms, outcome, error]` with trailing
/// empty fields left out and the outcome left out when it is `succeeded`. The first entry's
/// `at` is epoch milliseconds, each later one is milliseconds after the first. Half the bytes
/// of the entries as objects, which keeps a finished 3-step saga's record within one write unit.
pub fn encode(entries: &[HistoryEntry]) -> String {
    let origin = entries.first().map_or(0, |e| e.at);
    let compact: Vec<Value> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let at = if i == 0 { e.at } else { e.at - origin };
            let mut fields = vec![json!(at)];
            match e.kind {
                EntryKind::Status => fields.extend([json!("s"), json!(e.status)]),
                EntryKind::Command => fields.extend([json!("c"), json!(e.command)]),
                EntryKind::Step => fields.extend([json!("n"), json!(e.step), json!(e.outcome)]),
                EntryKind::Attempt => {
                    let phase = if e.phase.as_deref() == Some("compensation") {
                        "u"
                    } else {
                        "a"
                    };
                    let outcome = match (e.outcome.as_deref(), e.took_ms) {
                        (Some("succeeded"), Some(_)) => None,
                        (outcome, _) => outcome,
                    };
                    fields.extend([
                        json!(phase),
                        json!(e.step),
                        json!(e.attempt),
                        json!(e.took_ms),
                        json!(outcome),
                        json!(e.error),
                    ]);
                    while fields.last().is_some_and(Value::is_null) {
                        fields.pop();
                    }
                }
            }
            Value::Array(fields)
        })
        .collect();
    Value::Array(compact).to_string()
}

/// Reads entries stored by [`encode`], or as objects (the form records written before it hold).
pub fn decode(text: &str) -> Result<Vec<HistoryEntry>, String> {
    let stored: Vec<Value> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut origin = 0;
    stored
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let Value::Array(fields) = value else {
                return serde_json::from_value(value).map_err(|e| e.to_string());
            };
            let field = |n: usize| fields.get(n).cloned().unwrap_or(Value::Null);
            let text = |n: usize| field(n).as_str().map(str::to_string);
            let offset = field(0).as_i64().ok_or("a history entry has no time")?;
            let at = if i == 0 { offset } else { origin + offset };
            if i == 0 {
                origin = offset;
            }
            let entry = match field(1).as_str() {
                Some("s") => HistoryEntry {
                    status: serde_json::from_value(field(2)).map_err(|e| e.to_string())?,
                    ..HistoryEntry::new(at, EntryKind::Status)
                },
                Some("c") => HistoryEntry {
                    command: text(2),
                    ..HistoryEntry::new(at, EntryKind::Command)
                },
                Some("n") => HistoryEntry {
                    step: text(2),
                    outcome: text(3),
                    ..HistoryEntry::new(at, EntryKind::Step)
                },
                Some(phase @ ("a" | "u")) => {
                    let took_ms = field(4).as_i64();
                    let outcome = text(5).or_else(|| took_ms.map(|_| "succeeded".to_string()));
                    HistoryEntry {
                        step: text(2),
                        phase: Some(
                            if phase == "u" {
                                "compensation"
                            } else {
                                "action"
                            }
                            .into(),
                        ),
                        attempt: field(3).as_u64().map(|n| n as u32),
                        took_ms,
                        outcome,
                        error: text(6),
                        ..HistoryEntry::new(at, EntryKind::Attempt)
                    }
                }
                _ => return Err(format!("unknown history entry {fields:?}")),
            };
            Ok(entry)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at: Millis, kind: EntryKind) -> HistoryEntry {
        HistoryEntry::new(at, kind)
    }

    #[test]
    fn every_kind_of_entry_reads_back_as_it_was_written() {
        let entries = vec![
            HistoryEntry {
                status: Some(SagaStatus::Running),
                ..entry(1_796_015_919_038, EntryKind::Status)
            },
            HistoryEntry {
                step: Some("anonymize".into()),
                phase: Some("action".into()),
                attempt: Some(1),
                took_ms: Some(12),
                outcome: Some("succeeded".into()),
                ..entry(1_796_015_919_040, EntryKind::Attempt)
            },
            HistoryEntry {
                step: Some("tokenize".into()),
                phase: Some("compensation".into()),
                attempt: Some(2),
                took_ms: Some(3_000),
                outcome: Some("timeout".into()),
                error: Some("no answer in 3000 ms".into()),
                ..entry(1_796_015_919_100, EntryKind::Attempt)
            },
            HistoryEntry {
                step: Some("process".into()),
                phase: Some("action".into()),
                attempt: Some(1),
                ..entry(1_796_015_922_100, EntryKind::Attempt)
            },
            HistoryEntry {
                step: Some("process".into()),
                phase: Some("action".into()),
                attempt: Some(1),
                outcome: Some("lost".into()),
                error: Some("its invocation died".into()),
                ..entry(1_796_015_999_000, EntryKind::Attempt)
            },
            HistoryEntry {
                command: Some("cancel".into()),
                ..entry(1_796_016_000_000, EntryKind::Command)
            },
        ];
        let text = encode(&entries);
        assert_eq!(decode(&text).unwrap(), entries);
        let as_objects = serde_json::to_string(&entries).unwrap();
        assert!(text.len() * 2 < as_objects.len(), "{text}");
        // Records written before the compact form hold the entries as objects.
        assert_eq!(decode(&as_objects).unwrap(), entries);
        assert_eq!(decode("[]").unwrap(), vec![]);
        assert!(decode(r#"[[1, "x"]]"#).is_err());
    }
}
