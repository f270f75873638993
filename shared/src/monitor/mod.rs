//! The saga-events service: takes a batch of participant events, logs each on its saga's
//! record, publishes the compensation commands a failure calls for, and writes the record.
//!
//! Commands go out before the write that notes them, so a crash in between repeats them on the
//! redelivered batch under the same message key (`{saga}:{step}:compensation`), never loses them.

#[cfg(test)]
mod tests;

use crate::choreography::{Applied, Event, apply, command_sent, commands_due, new_record, saga_id};
use crate::definition::choreography::Choreography;
use crate::definition::{AnyDefinition, Definitions};
use crate::outcome::Outcome;

use crate::ports::{Clock, Message, Publisher, SagaStore, StoreError};
use crate::record::SagaRecord;
use crate::stored::Stored;
use crate::table::SagaTable;
use futures_util::{StreamExt, TryStreamExt, stream};
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// Conditional writes lost to a concurrent batch before giving up on a saga.
const MAX_WRITE_ATTEMPTS: u32 = 8;

/// Sagas of one batch processed at once.
const CONCURRENT_SAGAS: usize = 16;

/// How long a command publish may take.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// What the monitor needs.
pub struct Monitor<S, P, C> {
    /// Definitions; the choreographed ones are used.
    pub definitions: Definitions,
    /// The saga table (a compensating saga is due for the sweeper at its deadline).
    pub table: SagaTable<S>,
    /// Publishes the compensation commands.
    pub publisher: P,
    /// Time source.
    pub clock: C,
}

/// An event that was refused, and why.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Rejected {
    /// Position in the batch.
    pub index: usize,
    /// The event's message id, when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// What is wrong with it.
    pub reason: String,
}

/// What a batch did.
#[derive(Serialize, Debug, Default, Clone, PartialEq)]
pub struct IngestReport {
    /// Events in the batch.
    pub received: usize,
    /// Events appended to a saga log.
    pub logged: usize,
    /// Events already logged (same message id).
    pub duplicates: usize,
    /// Events applied to their saga's steps but left out of its full log, as older than the
    /// events it keeps (counted on the saga's record).
    pub dropped: usize,
    /// Events refused (malformed, unknown, or their saga's record refused by the store); the
    /// rest of the batch is processed regardless.
    pub rejected: Vec<Rejected>,
    /// Compensation commands published.
    pub commands: usize,
    /// Ids of the sagas the batch touched.
    pub sagas: Vec<String>,
    /// Replies to awaited publishes taken (sink batches only).
    #[serde(skip_serializing_if = "is_zero")]
    pub replies: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Why a batch could not be processed, for now; the caller retries it whole (duplicates are
/// harmless).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The saga table failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A compensation command could not be published.
    #[error("publishing a compensation command failed: {0}")]
    Publish(String),
}

/// One saga's events in a batch, in batch order, with their positions in the batch.
struct SagaEvents {
    def: Arc<Choreography>,
    correlation_id: String,
    events: Vec<Event>,
    indexes: Vec<usize>,
}

impl<S: SagaStore, P: Publisher, C: Clock> Monitor<S, P, C> {
    /// Processes a batch of raw events. Malformed or unknown events, and the events of a saga
    /// whose record the store refuses, are rejected one by one; a store or broker failure that
    /// may pass fails the batch.
    pub async fn ingest(&self, items: Vec<Value>) -> Result<IngestReport, IngestError> {
        let mut report = IngestReport {
            received: items.len(),
            ..IngestReport::default()
        };
        let mut groups: Vec<SagaEvents> = Vec::new();
        for (index, item) in items.into_iter().enumerate() {
            match self.accept(item) {
                Ok((def, event)) => {
                    let same_saga = |g: &&mut SagaEvents| {
                        g.def.saga_type == def.saga_type && g.correlation_id == event.correlation_id
                    };
                    match groups.iter_mut().find(same_saga) {
                        Some(group) => {
                            group.events.push(event);
                            group.indexes.push(index);
                        }
                        None => groups.push(SagaEvents {
                            correlation_id: event.correlation_id.clone(),
                            def,
                            events: vec![event],
                            indexes: vec![index],
                        }),
                    }
                }
                Err((message_id, reason)) => {
                    warn!(index, ?message_id, %reason, "event rejected");
                    report.rejected.push(Rejected {
                        index,
                        message_id,
                        reason,
                    });
                }
            }
        }
        // The sagas of a batch are independent: up to CONCURRENT_SAGAS at once, in batch order.
        let processed: Vec<_> = stream::iter(groups)
            .map(|group| async move {
                let outcome = self
                    .saga_batch(&group.def, &group.correlation_id, &group.events)
                    .await?;
                Ok::<_, IngestError>((outcome, group))
            })
            .buffered(CONCURRENT_SAGAS)
            .try_collect()
            .await?;
        for (
            (id, applied, commands),
            SagaEvents {
                events, indexes, ..
            },
        ) in processed
        {
            report.logged += applied.logged;
            report.duplicates += applied.duplicates;
            report.dropped += applied.dropped;
            report.commands += commands;
            for (message_id, reason) in applied.refused {
                let index = events
                    .iter()
                    .position(|e| e.message_id == message_id)
                    .map_or(0, |p| indexes[p]);
                report.rejected.push(Rejected {
                    index,
                    message_id: Some(message_id),
                    reason,
                });
            }
            report.sagas.push(id);
        }
        report.rejected.sort_by_key(|r| r.index);
        Ok(report)
    }

    /// Parses one event and finds its choreography.
    fn accept(&self, item: Value) -> Result<(Arc<Choreography>, Event), (Option<String>, String)> {
        let message_id = item
            .get("message_id")
            .and_then(Value::as_str)
            .map(str::to_string);
        let event: Event = serde_json::from_value(item)
            .map_err(|e| (message_id.clone(), format!("not an event: {e}")))?;
        event.check().map_err(|e| (message_id.clone(), e))?;
        let def = match &event.saga_type {
            Some(saga_type) => self
                .definitions
                .choreography(saga_type)
                .ok_or_else(|| format!("{saga_type} is not a choreographed saga type")),
            None => self
                .definitions
                .choreography_for(&event.event_type)
                .ok_or_else(|| {
                    format!(
                        "no choreographed saga type knows the event type {}",
                        event.event_type
                    )
                }),
        }
        .map_err(|reason| (message_id, reason))?;
        Ok((def.clone(), event))
    }

    /// Applies one saga's events, publishes what it owes, and writes it; retried on conflicts.
    async fn saga_batch(
        &self,
        def: &Choreography,
        correlation_id: &str,
        events: &[Event],
    ) -> Result<(String, Applied, usize), IngestError> {
        let id = saga_id(&def.saga_type, correlation_id);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let now = self.clock.now();
            let stored = self.table.get_bare(&id).await?;
            let expected = stored.as_ref().map(|r| r.version);
            let pinned = match &stored {
                Some(record) => match self.version_of(record).await? {
                    Ok(pinned) => Some(pinned),
                    Err(reason) => {
                        warn!(saga_id = %id, %reason, "events of a saga that cannot run refused");
                        let refused = events
                            .iter()
                            .map(|e| (e.message_id.clone(), reason.clone()))
                            .collect();
                        return Ok((
                            id,
                            Applied {
                                refused,
                                ..Applied::default()
                            },
                            0,
                        ));
                    }
                },
                None => {
                    crate::versions::keep_deployed(&self.table, &self.definitions, &def.saga_type)
                        .await?;
                    None
                }
            };
            let def = pinned.as_deref().unwrap_or(def);
            let mut record = stored.unwrap_or_else(|| {
                Stored::from(SagaRecord {
                    trace: Some(crate::invocation::saga_trace(None, now)),
                    ..new_record(def, correlation_id, now)
                })
            });
            let applied = apply(def, &mut record, events, now);
            if applied.logged == 0 && applied.dropped == 0 {
                return Ok((id, applied, 0));
            }
            let commands = self.publish_commands(def, &mut record, now).await?;
            let written = match expected {
                None => self.table.create(&mut record, now).await,
                Some(_) => self.table.update(&mut record, now).await,
            };
            match written {
                Ok(_) => {
                    info!(
                        saga_id = %id,
                        correlation_id,
                        status = record.status.as_str(),
                        logged = applied.logged,
                        duplicates = applied.duplicates,
                        commands,
                        "saga log updated"
                    );
                    return Ok((id, applied, commands));
                }
                // Writing it again cannot help: this saga's events are refused, one by one,
                // and the rest of the batch still counts (a failed batch would be redelivered
                // forever, blocking every saga behind it).
                Err(StoreError::Rejected(reason)) => {
                    warn!(saga_id = %id, %reason, "the saga's record was refused; its events are refused");
                    let reason = format!("the saga's record could not be stored: {reason}");
                    let refused = events
                        .iter()
                        .map(|e| {
                            let earlier = applied.refused.iter().find(|(m, _)| *m == e.message_id);
                            let why = earlier.map_or(&reason, |(_, why)| why);
                            (e.message_id.clone(), why.clone())
                        })
                        .collect();
                    let applied = Applied {
                        refused,
                        ..Applied::default()
                    };
                    return Ok((id, applied, commands));
                }
                Err(StoreError::Conflict) if attempt < MAX_WRITE_ATTEMPTS => {
                    info!(saga_id = %id, attempt, "saga changed concurrently; reapplying the batch");
                    self.clock
                        .sleep(fastrand::u64(1..=10 * u64::from(attempt)))
                        .await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The choreography a stored saga runs under (the version it started with), or why it
    /// cannot run. Only a store failure is an error.
    async fn version_of(
        &self,
        record: &SagaRecord,
    ) -> Result<Result<Arc<Choreography>, String>, StoreError> {
        let def =
            crate::versions::runnable_definition(&self.table, &self.definitions, record).await?;
        Ok(def.and_then(|def| match def {
            AnyDefinition::Choreographed(def) => Ok(def),
            AnyDefinition::Orchestrated(_) => Err(format!(
                "saga type {} is orchestrated: run-step drives it",
                record.saga_type
            )),
        }))
    }

    async fn publish_commands(
        &self,
        def: &Choreography,
        record: &mut SagaRecord,
        now: i64,
    ) -> Result<usize, IngestError> {
        let commands = commands_due(def, record);
        let trace = crate::invocation::saga_trace(record.trace.as_ref(), now);
        for command in &commands {
            let name = command.payload["command"].as_str().unwrap_or_default();
            let subsegment = crate::xray::publish(&def.command_topic);
            let [traceparent, xray] = crate::xray::call_headers(&trace, subsegment.as_ref());
            let properties = [
                ("command".to_string(), name.to_string()),
                ("saga_id".to_string(), record.id.clone()),
                (
                    "correlation_id".to_string(),
                    record.correlation_id.clone().unwrap_or_default(),
                ),
                traceparent,
                xray,
            ];
            let publish = self.publisher.publish(Message {
                topic: &def.command_topic,
                payload: &command.payload,
                idempotency_key: &command.idempotency_key,
                properties: &properties,
                timeout: PUBLISH_TIMEOUT,
            });
            let outcome = crate::xray::traced(subsegment, publish).await;
            if let Outcome::Failed { error, .. } = outcome {
                return Err(IngestError::Publish(error));
            }
            info!(saga_id = %record.id, step = %command.step, command = name, "compensation command sent");
            command_sent(def, record, &command.step, now);
        }
        Ok(commands.len())
    }
}
