use super::*;
use crate::adapters::memory::{ManualClock, MemoryStore, ScriptedParticipant, announcing_table};
use crate::engine::new_record;
use crate::outcome::FailureClass;
use crate::record::{Lease, StepStatus};
use serde_json::json;
use std::sync::Arc;

type TestWorker =
    Worker<MemoryStore, Arc<ScriptedParticipant>, Arc<ScriptedParticipant>, ManualClock>;

fn worker(
    script: impl Fn(&str, u32) -> Outcome + Send + Sync + 'static,
) -> (TestWorker, Arc<ScriptedParticipant>) {
    let definitions = image_definitions(&image_without_notifications());
    let participant = Arc::new(ScriptedParticipant::new(script));
    let worker = Worker {
        table: announcing_table(participant.clone(), &definitions),
        http: participant.clone(),
        publisher: participant.clone(),
        clock: ManualClock::at(1_000),
        definitions,
        config: WorkerConfig::default(),
    };
    (worker, participant)
}

/// An image definition file's text, loaded with each URL variable pointing at the participant.
fn image_definitions(text: &str) -> Definitions {
    Definitions::from_files([("image.json", text)], |name| {
        Some(format!("http://participant/{name}"))
    })
    .unwrap()
}

/// The bundled image definition without its lifecycle notifications, so the participant sees
/// the saga's own calls only (`a_finished_saga_is_announced_once` tests them).
fn image_without_notifications() -> String {
    let mut image: serde_json::Value =
        serde_json::from_str(include_str!("../../../definitions/image.json")).unwrap();
    image.as_object_mut().unwrap().remove("notifications");
    image.to_string()
}

async fn started(worker: &TestWorker) -> Stored {
    let def = worker.definitions.get("image").unwrap();
    let mut record = Stored::from(new_record(
        def,
        "saga-1".into(),
        json!({"image_id": "i"}),
        1_000,
    ));
    worker.table.create(&mut record, 1_000).await.unwrap();
    record
}

const FAR: Millis = 1_000_000_000;

/// A participant script: the AI Model (the image saga's last step) fails with `class`, every
/// other call succeeds.
fn failing_at_process(class: FailureClass) -> impl Fn(&str, u32) -> Outcome + Send + Sync {
    move |target, _| {
        if target.ends_with("AI_MODEL_URL") {
            Outcome::Failed {
                class,
                error: class.as_str().into(),
            }
        } else {
            Outcome::Succeeded(json!(null))
        }
    }
}

#[tokio::test]
async fn happy_path_runs_every_step_in_n_plus_one_writes() {
    let (worker, participant) = worker(|_, _| Outcome::Succeeded(json!({"ok": 1})));
    let image = started(&worker).await;
    let result = worker.run(image, "inv-1", FAR).await.unwrap();
    assert_eq!(result, RunResult::Finished(SagaStatus::Completed));
    // One create plus one claim plus one write per step: N + 2 for N = 3.
    let writes = worker.table.store().writes();
    assert_eq!(writes.len(), 5);
    let last = writes.last().unwrap();
    assert_eq!(last.status, SagaStatus::Completed);
    assert_eq!(last.writes, 5);
    assert!(last.lease.is_none() && !last.runnable);
    assert_eq!(
        last.expires_at,
        Some(1 + 30 * 86_400),
        "terminal sagas get a TTL"
    );
    assert_eq!(
        participant.targets(),
        [
            "http://participant/ANONYMIZER_URL",
            "persistent://public/default/tokenizer_event",
            "http://participant/AI_MODEL_URL"
        ]
    );
}

#[tokio::test]
async fn a_duplicate_delivery_of_the_same_image_runs_nothing() {
    let (worker, participant) = worker(|_, _| Outcome::Succeeded(json!(null)));
    let image = started(&worker).await;
    worker.run(image.clone(), "inv-1", FAR).await.unwrap();
    let calls = participant.received().len();
    assert_eq!(
        worker.run(image, "inv-2", FAR).await.unwrap(),
        RunResult::LostRace
    );
    assert_eq!(participant.received().len(), calls);
}

#[tokio::test]
async fn a_leased_image_is_skipped() {
    let (worker, participant) = worker(|_, _| Outcome::Succeeded(json!(null)));
    let mut image = started(&worker).await;
    image.lease = Some(Lease {
        owner: "other".into(),
        expires_at: 5_000,
    });
    assert_eq!(
        worker.run(image, "inv", FAR).await.unwrap(),
        RunResult::Skipped("leased")
    );
    assert!(participant.received().is_empty());
}

#[tokio::test]
async fn failure_at_the_last_step_publishes_the_compensation_with_the_same_key_on_retries() {
    let (worker, participant) = worker(failing_at_process(FailureClass::ServerError));
    let image = started(&worker).await;
    let result = worker.run(image, "inv", FAR).await.unwrap();
    assert_eq!(result, RunResult::Finished(SagaStatus::Compensated));
    let received = participant.received();
    let ai_keys: Vec<&str> = received
        .iter()
        .filter(|c| c.target.ends_with("AI_MODEL_URL"))
        .map(|c| c.idempotency_key.as_str())
        .collect();
    assert_eq!(ai_keys, ["saga-1:process:action"; 3]);
    let last = received.last().unwrap();
    assert_eq!(
        last.target,
        "persistent://public/default/tokenizer_compensation"
    );
    assert_eq!(last.idempotency_key, "saga-1:tokenize:compensation");
}

#[tokio::test]
async fn near_the_deadline_the_saga_is_released_after_one_call() {
    let (worker, participant) = worker(|_, _| Outcome::Succeeded(json!(null)));
    let image = started(&worker).await;
    // Time for the first call, but not for a second one of 3 s plus the lease margin.
    let result = worker.run(image, "inv", 1_000 + 4_000).await.unwrap();
    assert_eq!(result, RunResult::Released);
    assert_eq!(participant.received().len(), 1);
    let last = worker.table.store().writes().last().cloned().unwrap();
    assert!(last.runnable && last.lease.is_none());
    assert_eq!(
        last.steps[0].action.status,
        crate::record::StepStatus::Completed
    );
    assert_eq!(
        last.steps[1].action.attempts, 0,
        "the released step was not begun"
    );
}

#[tokio::test]
async fn a_long_backoff_parks_the_saga_and_the_sweeper_wakes_it() {
    use crate::sweeper::{SWEEP_BATCH, Sweeper};
    let definitions = Definitions::from_files(
        [(
            "slow.json",
            r#"{"type": "slow", "steps": [{"name": "a", "action": {"http": {"url": "http://p/a"}},
                "retry": {"max_attempts": 2, "initial_interval_ms": 120000, "max_interval_ms": 120000, "jitter": false}}]}"#,
        )],
        |_| None,
    )
    .unwrap();
    let participant = Arc::new(ScriptedParticipant::new(|_, nth| match nth {
        1 => Outcome::Failed {
            class: FailureClass::ServerError,
            error: "busy".into(),
        },
        _ => Outcome::Succeeded(json!({"ok": true})),
    }));
    let worker = Worker {
        table: announcing_table(participant.clone(), &definitions),
        http: participant.clone(),
        publisher: participant.clone(),
        clock: ManualClock::at(1_000),
        definitions,
        config: WorkerConfig::default(),
    };
    let mut record = Stored::from(new_record(
        worker.definitions.get("slow").unwrap(),
        "s".into(),
        json!({}),
        1_000,
    ));
    worker.table.create(&mut record, 1_000).await.unwrap();

    // The retry is due in 120 s, beyond the inline wait: the saga is parked, not slept on.
    assert_eq!(
        worker.run(record, "inv", FAR).await.unwrap(),
        RunResult::Parked(121_000)
    );
    let parked = worker.table.get_bare("s").await.unwrap().unwrap();
    assert!(parked.lease.is_none() && !parked.runnable);
    assert_eq!(
        (parked.wake_at, parked.due_at),
        (Some(121_000), Some(121_000))
    );

    // With a sweep a minute: the sweep at 60 s leaves it for the next; the one at 61 s wakes
    // it at its due time.
    let sweeper = |at| Sweeper {
        table: worker.table.clone(),
        clock: ManualClock::at(at),
        batch: SWEEP_BATCH,
        wake_ahead_ms: 60_000,
    };
    assert_eq!(sweeper(60_000).sweep().await.nudged, 0);
    let on_time = sweeper(61_000);
    let report = on_time.sweep().await;
    assert_eq!((report.nudged, report.woken_on_time), (1, 1));
    assert_eq!(on_time.clock.now(), 121_000);
    let woken = worker.table.get_bare("s").await.unwrap().unwrap();
    assert!(woken.runnable);

    let worker = Worker {
        clock: ManualClock::at(121_000),
        ..worker
    };
    assert_eq!(
        worker.run(woken, "inv-2", FAR).await.unwrap(),
        RunResult::Finished(SagaStatus::Completed)
    );
    assert_eq!(participant.received().len(), 2);
}

/// The calls of an image saga cancelled while `tokenize` ran: tokenize is undone, process
/// never runs.
const CANCELLED_AFTER_TOKENIZE: [&str; 3] = [
    "http://participant/ANONYMIZER_URL",
    "persistent://public/default/tokenizer_event",
    "persistent://public/default/tokenizer_compensation",
];

/// A worker whose participant, on each of these targets, lets another writer change the record
/// (its version moves on); with `fail_process`, the AI Model refuses its call (422).
fn interrupted(
    targets: &'static [&'static str],
    change: fn(&mut SagaRecord),
    fail_process: bool,
) -> (TestWorker, Arc<ScriptedParticipant>) {
    let store = MemoryStore::default();
    let other_writer = store.clone();
    let (mut worker, participant) = worker(move |target, _| {
        if targets.iter().any(|t| target.ends_with(t)) {
            other_writer.edit("saga-1", change);
        }
        if fail_process && target.ends_with("AI_MODEL_URL") {
            return Outcome::Failed {
                class: FailureClass::ClientError,
                error: "422".into(),
            };
        }
        Outcome::Succeeded(json!(null))
    });
    *worker.table.store_mut() = store;
    (worker, participant)
}

/// A worker whose participant, while running `tokenize`, lets another writer change the record.
fn interrupted_during_tokenize(
    change: fn(&mut SagaRecord),
) -> (TestWorker, Arc<ScriptedParticipant>) {
    interrupted(&["/tokenizer_event"], change, false)
}

#[tokio::test]
async fn a_cancel_during_a_call_compensates_that_step_once_it_completes() {
    let (worker, participant) = interrupted_during_tokenize(|r| r.cancel_requested = true);
    let image = started(&worker).await;
    let result = worker.run(image, "inv-1", FAR).await.unwrap();
    assert_eq!(result, RunResult::Finished(SagaStatus::Cancelled));
    assert_eq!(
        participant.targets(),
        CANCELLED_AFTER_TOKENIZE,
        "the completed tokenize is undone and process never runs"
    );
    let last = worker.table.get_bare("saga-1").await.unwrap().unwrap();
    let tokenize = &last.steps[1];
    assert_eq!(tokenize.action.status, StepStatus::Completed);
    assert_eq!(
        tokenize.compensation.as_ref().map(|c| c.status),
        Some(StepStatus::Completed)
    );
    assert_eq!(last.steps[2].action.attempts, 0);
}

#[tokio::test]
async fn a_saga_taken_over_during_a_call_is_left_to_its_new_owner() {
    // The sweeper took the saga back (say, the call outlived its lease): not a cancel to merge.
    let (worker, participant) = interrupted_during_tokenize(|r| {
        r.cancel_requested = true;
        r.lease = None;
    });
    let image = started(&worker).await;
    let result = worker.run(image, "inv-1", FAR).await.unwrap();
    assert_eq!(result, RunResult::LostRace);
    assert_eq!(
        participant.received().len(),
        2,
        "nothing runs after the lost write"
    );
}

#[tokio::test]
async fn a_record_the_store_refuses_ends_the_saga_failed_instead_of_looping() {
    // Each HTTP participant answers 3 KB (kept in the record); the store refuses records over
    // 5 KB, as DynamoDB refuses items over its size limit.
    let big = "x".repeat(3_000);
    let (mut worker, _) = worker(move |_, _| Outcome::Succeeded(json!({ "blob": big })));
    *worker.table.store_mut() = MemoryStore::refusing_records_over(5_000);
    let record = started(&worker).await;
    assert_eq!(
        worker.run(record, "inv", FAR).await.unwrap(),
        RunResult::Finished(SagaStatus::Failed)
    );
    let stored = worker.table.get_bare("saga-1").await.unwrap().unwrap();
    assert_eq!(stored.status, SagaStatus::Failed);
    let failure = stored.failure.clone().unwrap();
    assert!(
        failure.error.contains("refused the saga record") && failure.error.contains("5000"),
        "{}",
        failure.error
    );
    assert!(stored.steps.iter().all(|s| s.output.is_none()));
    assert!(
        stored.lease.is_none() && !stored.runnable,
        "nothing runs it again"
    );
}

/// A worker whose participant, on each of these targets, lets the cancel command record a
/// cancel (the lease stays this worker's).
fn cancelled_during(
    targets: &'static [&'static str],
    fail_process: bool,
) -> (TestWorker, Arc<ScriptedParticipant>) {
    interrupted(targets, |r| r.cancel_requested = true, fail_process)
}

#[tokio::test]
async fn a_second_cancel_during_the_compensation_does_not_throw_the_worker_out() {
    let (worker, participant) =
        cancelled_during(&["/tokenizer_event", "/tokenizer_compensation"], false);
    let image = started(&worker).await;
    let result = worker.run(image, "inv-1", FAR).await.unwrap();
    assert_eq!(result, RunResult::Finished(SagaStatus::Cancelled));
    assert_eq!(
        participant.targets(),
        CANCELLED_AFTER_TOKENIZE,
        "the finished compensation was written, not redone after the lease"
    );
}

#[tokio::test]
async fn a_cancel_during_the_compensation_of_a_failure_leaves_it_compensated() {
    let (worker, participant) = cancelled_during(&["/tokenizer_compensation"], true);
    let image = started(&worker).await;
    let result = worker.run(image, "inv-1", FAR).await.unwrap();
    assert_eq!(result, RunResult::Finished(SagaStatus::Compensated));
    let last = worker.table.get_bare("saga-1").await.unwrap().unwrap();
    assert!(last.cancel_requested, "the cancel is recorded");
    assert_eq!(last.record.failure.unwrap().step, "process");
    assert_eq!(participant.received().len(), 4);
}

/// The image definition after a redeploy that renamed its first step, removed its last one
/// and added another: a new version.
fn redeployed_image() -> Definitions {
    let mut changed: serde_json::Value =
        serde_json::from_str(include_str!("../../../definitions/image.json")).unwrap();
    let steps = changed["steps"].as_array_mut().unwrap();
    steps[0]["name"] = json!("anonymise");
    steps.pop();
    steps.push(json!({ "name": "archive", "action": { "http": { "url": "http://new/archive" } } }));
    image_definitions(&changed.to_string())
}

#[tokio::test]
async fn a_saga_ends_under_the_definition_version_it_started_with_after_a_redeploy() {
    let (old, _) = worker(|_, _| Outcome::Succeeded(json!({"ok": 1})));
    crate::versions::keep_deployed(&old.table, &old.definitions, "image")
        .await
        .unwrap();
    let image = started(&old).await;
    let started_under = image.definition_version.clone().unwrap();
    // A new deployment: new processes, with only the changed definition.
    let participant = Arc::new(ScriptedParticipant::new(|_, _| {
        Outcome::Succeeded(json!({"ok": 1}))
    }));
    let new = Worker {
        table: old.table.clone(),
        http: participant.clone(),
        publisher: participant.clone(),
        clock: ManualClock::at(1_000),
        definitions: redeployed_image(),
        config: WorkerConfig::default(),
    };
    assert_ne!(new.definitions.get("image").unwrap().version, started_under);
    let result = new.run(image, "inv-1", FAR).await.unwrap();
    assert_eq!(result, RunResult::Finished(SagaStatus::Completed));
    let targets = participant.targets();
    assert_eq!(
        targets,
        [
            "http://participant/ANONYMIZER_URL",
            "persistent://public/default/tokenizer_event",
            "http://participant/AI_MODEL_URL",
        ],
        "the original three steps, none of the new version's"
    );
    let done = new.table.get_bare("saga-1").await.unwrap().unwrap();
    assert_eq!(done.definition_version, Some(started_under));
    let names: Vec<&str> = done.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["anonymize", "tokenize", "process"]);
}

#[tokio::test]
async fn a_saga_whose_definition_version_is_kept_nowhere_fails_with_the_reason() {
    let (old, _) = worker(|_, _| Outcome::Succeeded(json!({"ok": 1})));
    // Started without keeping its version (as by a process whose table write was lost).
    let image = started(&old).await;
    let (mut new, participant) = worker(|_, _| Outcome::Succeeded(json!({"ok": 1})));
    new.definitions = redeployed_image();
    // The same table, announcing through the new deployment.
    new.table = SagaTable::new(old.table.store().clone(), old.table.rules).announcing(Arc::new(
        crate::notifications::Lifecycle {
            publisher: participant.clone(),
            definitions: new.definitions.clone(),
        },
    ));
    let result = new.run(image, "inv-1", FAR).await.unwrap();
    assert_eq!(result, RunResult::Finished(SagaStatus::Failed));
    // No step ran; the FAILED notification went to the deployed version's topic, the saga's
    // own version being lost.
    let calls = participant.received();
    let sent: Vec<(&str, &str)> = calls
        .iter()
        .map(|c| (c.target.as_str(), c.idempotency_key.as_str()))
        .collect();
    assert_eq!(
        sent,
        [(
            "persistent://public/default/saga-lifecycle",
            "saga-1:notify:FAILED"
        )]
    );
    let failed = new.table.get_bare("saga-1").await.unwrap().unwrap();
    let error = failed.record.failure.unwrap().error;
    assert!(error.contains("neither deployed nor kept"), "{error}");
}

#[tokio::test]
async fn a_record_whose_steps_are_not_its_definitions_fails_instead_of_running() {
    let (worker, participant) = worker(|_, _| Outcome::Succeeded(json!({"ok": 1})));
    let mut image = started(&worker).await;
    worker.table.store().edit("saga-1", |r| {
        r.steps.pop();
    });
    image.steps.pop();
    image.version += 1;
    image.writes += 1;
    let result = worker.run(image, "inv-1", FAR).await.unwrap();
    assert_eq!(result, RunResult::Finished(SagaStatus::Failed));
    assert!(participant.targets().is_empty());
    let failed = worker.table.get_bare("saga-1").await.unwrap().unwrap();
    let error = failed.record.failure.unwrap().error;
    assert!(error.contains("not those of its definition"), "{error}");
}

/// Two steps; the second sends the first one's output.
fn bulky_worker(
    script: impl Fn(&str, u32) -> Outcome + Send + Sync + 'static,
) -> (TestWorker, Arc<ScriptedParticipant>) {
    let (mut worker, participant) = worker(script);
    worker.definitions = Definitions::from_files(
        [(
            "bulky.json",
            r#"{"type": "bulky", "steps": [
                {"name": "early", "action": {"http": {"url": "http://p/early"}}},
                {"name": "later", "action": {"http": {"url": "http://p/later",
                    "body": {"early": "${/steps/early/output}"}}}}]}"#,
        )],
        |_| None,
    )
    .unwrap();
    // Records over 8 KB are refused: large payloads must live beside them.
    *worker.table.store_mut() = MemoryStore::refusing_records_over(8_000);
    (worker, participant)
}

#[tokio::test]
async fn large_payloads_are_kept_whole_beside_the_record_and_references_read_them() {
    let items = "o".repeat(100 * 1024);
    let answer = move |target: &str| json!({ "from": target, "items": items });
    let output = answer("http://p/early");
    let (worker, participant) = bulky_worker(move |target, _| Outcome::Succeeded(answer(target)));
    let def = worker.definitions.get("bulky").unwrap();
    let input = json!({ "order": "i".repeat(50 * 1024) });
    let mut record = Stored::from(new_record(def, "saga-1".into(), input.clone(), 1_000));
    worker.table.create(&mut record, 1_000).await.unwrap();
    let result = worker.run(record, "inv", FAR).await.unwrap();
    assert_eq!(result, RunResult::Finished(SagaStatus::Completed));
    let received = participant.received();
    assert_eq!(received[0].body, input, "the input, whole");
    assert_eq!(
        received[1].body,
        json!({ "early": output }),
        "an early output, whole"
    );
    // As stored: the record refers to three items and holds none of the payloads.
    let stored = worker.table.get_bare("saga-1").await.unwrap().unwrap();
    assert!(stored.input.is_null() && stored.input_ref.is_some());
    assert!(
        stored
            .steps
            .iter()
            .all(|s| s.output.is_none() && s.output_ref.is_some())
    );
    assert_eq!(
        worker.table.store().texts().len(),
        3,
        "input and two outputs"
    );
    // As read: whole again, and the payload items expire with the finished record.
    let read = worker.table.get("saga-1").await.unwrap().unwrap();
    assert_eq!(read.input, input);
    assert_eq!(read.steps[0].output, Some(output));
    let expiring = worker.table.store().expiring_texts();
    assert_eq!(expiring.len(), 3);
    assert!(expiring.values().all(|at| Some(*at) == read.expires_at));
}

#[tokio::test]
async fn an_output_over_the_hard_limit_fails_its_step_naming_the_limit() {
    let (worker, participant) = bulky_worker(|target, _| match target {
        "http://p/early" => Outcome::Succeeded(json!("o".repeat(300 * 1024))),
        _ => Outcome::Succeeded(json!({})),
    });
    let def = worker.definitions.get("bulky").unwrap();
    let mut record = Stored::from(new_record(def, "saga-1".into(), json!({}), 1_000));
    worker.table.create(&mut record, 1_000).await.unwrap();
    let result = worker.run(record, "inv", FAR).await.unwrap();
    assert_eq!(result, RunResult::Finished(SagaStatus::Compensated));
    assert_eq!(participant.targets(), ["http://p/early"], "later never ran");
    let stored = worker.table.get("saga-1").await.unwrap().unwrap();
    let error = stored.steps[0].action.error.clone().unwrap();
    assert!(error.contains("262144-byte limit"), "{error}");
    assert_eq!(
        stored.steps[0].action.failure,
        Some(FailureClass::InvalidResponse)
    );
}

#[tokio::test]
async fn a_finished_saga_is_announced_once_by_the_invocation_whose_write_ended_it() {
    let (mut worker, participant) = worker(|_, _| Outcome::Succeeded(json!({"ok": 1})));
    worker.definitions = image_definitions(include_str!("../../../definitions/image.json"));
    worker.table = announcing_table(participant.clone(), &worker.definitions);
    let image = started(&worker).await;
    // The record does not carry the topic: the worker reads it from the saga's definition.
    assert_eq!(image.notify_topic, None);
    let stored = worker.table.get_bare("saga-1").await.unwrap().unwrap();
    assert!(
        !serde_json::to_string(&stored.record)
            .unwrap()
            .contains("notify_topic")
    );
    let result = worker.run(image.clone(), "inv-1", FAR).await.unwrap();
    assert_eq!(result, RunResult::Finished(SagaStatus::Completed));
    // A duplicate delivery of the same image loses its claim and announces nothing.
    assert_eq!(
        worker.run(image, "inv-2", FAR).await.unwrap(),
        RunResult::LostRace
    );
    let notices: Vec<(String, serde_json::Value)> = participant
        .received()
        .into_iter()
        .filter(|c| c.target.ends_with("saga-lifecycle"))
        .map(|c| (c.idempotency_key, c.body))
        .collect();
    // The create announced the start; the end is announced once.
    let keys: Vec<&str> = notices.iter().map(|(key, _)| key.as_str()).collect();
    assert_eq!(keys, ["saga-1:notify:STARTED", "saga-1:notify:COMPLETED"]);
    assert_eq!(notices[1].1["status"], "COMPLETED");
    assert_eq!(notices[1].1["needs_operator"], false);
}

/// A worker running the image saga under the `boundaries` checkpoint policy.
fn boundaries_worker(
    script: impl Fn(&str, u32) -> Outcome + Send + Sync + 'static,
) -> (TestWorker, Arc<ScriptedParticipant>) {
    let (mut worker, participant) = worker(script);
    let mut image: serde_json::Value =
        serde_json::from_str(&image_without_notifications()).unwrap();
    image["checkpoint"] = json!("boundaries");
    worker.definitions = image_definitions(&image.to_string());
    (worker, participant)
}

#[tokio::test]
async fn under_boundaries_a_happy_saga_is_written_at_its_claim_and_its_end_only() {
    let (worker, participant) = boundaries_worker(|_, _| Outcome::Succeeded(json!({"ok": 1})));
    // Through the stream: the create, the claim, the end.
    let image = started(&worker).await;
    let result = worker.run(image, "inv-1", FAR).await.unwrap();
    assert_eq!(result, RunResult::Finished(SagaStatus::Completed));
    let writes = worker.table.store().writes();
    assert_eq!(writes.len(), 3);
    let claim = &writes[1];
    assert_eq!(claim.steps[0].action.status, StepStatus::Running);
    let lease = claim.lease.as_ref().expect("the claim holds a lease");
    let def = worker.definitions.get("image").unwrap();
    let all_steps: i64 = (0..3).map(|i| def.timeout_ms(i) as i64).sum();
    assert_eq!(
        lease.expires_at,
        1_000 + all_steps + WorkerConfig::default().lease_margin_ms,
        "the lease covers every call up to the end (the image saga has no pivot)"
    );
    let last = writes.last().unwrap();
    assert_eq!(last.status, SagaStatus::Completed);
    assert!(
        last.steps
            .iter()
            .all(|s| s.output == Some(json!({"ok": 1})))
    );
    let attempts = last.history.iter().filter(|e| e.outcome.is_some()).count();
    assert_eq!(attempts, 3, "every attempt is in the history all the same");
    assert_eq!(participant.received().len(), 3);

    // Started by a request that waits: created already claimed, then written once at its end.
    let def = worker.definitions.get("image").unwrap();
    let mut record = Stored::from(new_record(
        def,
        "saga-2".into(),
        json!({"image_id": "j"}),
        1_000,
    ));
    let next = worker.claim_new(&mut record, "inv-2").unwrap();
    worker.table.create(&mut record, 1_000).await.unwrap();
    let result = worker.drive_new(&mut record, next, "inv-2", FAR).await;
    assert_eq!(result.unwrap(), RunResult::Finished(SagaStatus::Completed));
    let stored = worker.table.get_bare("saga-2").await.unwrap().unwrap();
    assert_eq!((stored.writes, stored.status), (2, SagaStatus::Completed));
}

#[tokio::test]
async fn under_boundaries_a_crash_mid_run_reruns_the_unrecorded_calls_with_the_same_keys() {
    let (mut worker, participant) = boundaries_worker(|_, _| Outcome::Succeeded(json!({})));
    worker.config.failpoints = Failpoints {
        before_call: 1.0,
        after_call: 0.0,
        step: Some("process".into()),
    };
    let image = started(&worker).await;
    let mut worker = Arc::new(worker);
    let stored = crash(&worker, image).await;
    assert_eq!(stored.writes, 2, "nothing was written after the claim");
    assert_eq!(stored.steps[1].action.status, StepStatus::Pending);

    // The sweeper hands the saga on once the claim's lease expires; the next invocation runs
    // the two unrecorded calls again, with the keys they carried the first time. Having lost
    // an invocation, the saga is now written after every step: when the third call kills its
    // invocation again, the first two are on record.
    let stored = crash(&worker, handed_on(&worker, stored)).await;
    assert_eq!(
        stored.steps[0].action.lost_attempts, 1,
        "the lost attempt is counted"
    );
    assert_eq!(
        [stored.steps[0].action.status, stored.steps[1].action.status],
        [StepStatus::Completed, StepStatus::Completed]
    );
    Arc::get_mut(&mut worker).unwrap().config.failpoints = Failpoints::default();
    let result = worker
        .run(handed_on(&worker, stored), "inv-3", FAR)
        .await
        .unwrap();
    assert_eq!(result, RunResult::Finished(SagaStatus::Completed));
    assert_eq!(
        participant.keys(),
        [
            "saga-1:anonymize:action",
            "saga-1:tokenize:action",
            "saga-1:anonymize:action",
            "saga-1:tokenize:action",
            "saga-1:process:action",
        ]
    );
    let last = worker.table.get_bare("saga-1").await.unwrap().unwrap();
    assert_eq!(
        last.steps[2].action.lost_attempts, 1,
        "the call that killed its invocation is the one charged"
    );
}

/// Runs the saga in a task whose invocation crashes; returns the record as stored after it.
async fn crash(worker: &Arc<TestWorker>, image: Stored) -> Stored {
    let crashing = worker.clone();
    let died = tokio::spawn(async move { crashing.run(image, "inv", FAR).await }).await;
    assert!(died.is_err(), "the invocation died");
    worker.table.get_bare("saga-1").await.unwrap().unwrap()
}

/// The stored record once its lease expired and the sweeper nudged it.
fn handed_on(worker: &TestWorker, mut stored: Stored) -> Stored {
    let expires_at = stored.lease.as_ref().unwrap().expires_at;
    worker.clock.advance(expires_at - worker.clock.now() + 1);
    stored.runnable = true;
    stored.lease = None;
    stored
}

#[tokio::test]
async fn under_boundaries_a_failure_is_written_before_anything_else_runs() {
    let (worker, _) = boundaries_worker(failing_at_process(FailureClass::ClientError));
    let image = started(&worker).await;
    let result = worker.run(image, "inv-1", FAR).await.unwrap();
    assert_eq!(result, RunResult::Finished(SagaStatus::Compensated));
    let statuses: Vec<SagaStatus> = worker
        .table
        .store()
        .writes()
        .iter()
        .map(|w| w.status)
        .collect();
    // The create, the claim, the failure that starts compensation, then the end.
    assert_eq!(
        statuses,
        [
            SagaStatus::Pending,
            SagaStatus::Running,
            SagaStatus::Compensating,
            SagaStatus::Compensated
        ]
    );
}

#[tokio::test]
async fn a_finished_image_saga_fits_in_one_write_unit() {
    // The demo participants' answers (dev/participants.py), a traced start with notifications:
    // the record as the image saga's last write stores it.
    let (mut worker, _) = worker(|target, _| {
        if target.ends_with("ANONYMIZER_URL") {
            Outcome::Succeeded(
                json!({"image_id": "img_123", "anonymized": true, "data": "<redacted>"}),
            )
        } else if target.ends_with("AI_MODEL_URL") {
            Outcome::Succeeded(
                json!({"image_id": "img_123", "model": "demo-classifier-1", "label": "no-finding", "score": 0.97}),
            )
        } else {
            Outcome::Succeeded(json!(null))
        }
    });
    worker.definitions = image_definitions(include_str!("../../../definitions/image.json"));
    let def = worker.definitions.get("image").unwrap();
    let mut record = Stored::from(new_record(
        def,
        uuid::Uuid::new_v4().to_string(),
        json!({"image_id": "img_123", "data": "datos de prueba"}),
        1_796_015_919_038,
    ));
    record.trace = Some(crate::trace::TraceContext::pick(
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        None,
        None,
        1_796_015_919_038,
    ));
    worker.clock = ManualClock::at(1_796_015_919_038);
    let next = worker.claim_new(&mut record, "start-saga/x").unwrap();
    worker
        .table
        .create(&mut record, 1_796_015_919_038)
        .await
        .unwrap();
    worker
        .drive_new(&mut record, next, "start-saga/x", FAR * 10_000)
        .await
        .unwrap();
    let stored = worker.table.get_bare(&record.id).await.unwrap().unwrap();
    assert_eq!(stored.status, SagaStatus::Completed);
    let item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
        crate::stored::to_item(&stored.record, stored.capacity_units).unwrap();
    let size = saga_dynamodb::item_size(&item);
    // One write unit is 1 KB of item: a byte more and every write of the saga costs two.
    assert!(size <= 1024, "{size} bytes: over one write unit");
}

#[tokio::test]
async fn a_saga_whose_payload_item_is_gone_ends_failed_saying_so() {
    let (worker, participant) = worker(|_, _| Outcome::Succeeded(json!({})));
    let mut record = started(&worker).await;
    // The input lives in an item of its own that is no longer there.
    record.input = serde_json::Value::Null;
    record.input_ref = Some("saga-1#input".into());
    worker.table.update(&mut record, 1_000).await.unwrap();
    let result = worker.run(record, "me", FAR).await.unwrap();
    assert_eq!(result, RunResult::Finished(SagaStatus::Failed));
    let stored = worker.table.get_bare("saga-1").await.unwrap().unwrap();
    assert_eq!(stored.status, SagaStatus::Failed);
    let error = stored.record.failure.unwrap().error;
    assert!(
        error.contains("saga-1#input") && error.contains("missing"),
        "{error}"
    );
    assert!(participant.received().is_empty(), "nothing ran");
}

#[tokio::test]
async fn a_write_whose_answer_was_lost_does_not_stop_the_worker() {
    let (worker, participant) = worker(|_, _| Outcome::Succeeded(json!({})));
    let record = started(&worker).await;
    // The claim is stored, but its answer is lost and the SDK's retry meets its own write.
    worker.table.store().lose_next_answer();
    let result = worker.run(record, "me", FAR).await.unwrap();
    assert_eq!(result, RunResult::Finished(SagaStatus::Completed));
    assert_eq!(participant.received().len(), 3);
}
