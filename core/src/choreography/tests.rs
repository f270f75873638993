use super::fixtures::{event, ever_earlier, failing_run, pipeline};
use super::*;
use crate::engine::properties::any_step_status;
use proptest::prelude::*;

fn run(events: &[Event]) -> (SagaRecord, Vec<Command>) {
    let def = pipeline();
    let mut record = new_record(&def, "c-1", 1_000);
    let mut commands = Vec::new();
    for event in events {
        apply(&def, &mut record, std::slice::from_ref(event), 2_000);
        for command in commands_due(&def, &record) {
            command_sent(&def, &mut record, &command.step, 2_000);
            commands.push(command);
        }
    }
    (record, commands)
}

fn statuses(record: &SagaRecord) -> Vec<(StepStatus, Option<StepStatus>)> {
    record
        .steps
        .iter()
        .map(|s| (s.action.status, s.compensation.as_ref().map(|c| c.status)))
        .collect()
}

#[test]
fn a_complete_run_is_completed_with_every_event_logged() {
    let mut events = failing_run();
    events.truncate(8);
    events.push(event(9, "ProcessingCompleted"));
    let (record, commands) = run(&events);
    assert_eq!(record.status, SagaStatus::Completed);
    assert!(commands.is_empty());
    assert_eq!(record.events.len(), 9);
    assert_eq!(record.task_id.as_deref(), Some("t-1"));
    assert_eq!(record.steps[0].action.started_at, Some(1_767_225_601_000));
    assert_eq!(record.steps[0].action.ended_at, Some(1_767_225_603_000));
    assert_eq!(
        record.steps[2].output,
        Some(json!({
            "event": "ProcessingCompleted",
            "message_id": "m9",
            "occurred_at": 1_767_225_609_000_i64,
            "data": { "n": 9 }
        }))
    );
    assert!(record.ended_at.is_some() && record.due_at.is_none());
}

#[test]
fn a_failure_sends_the_completed_steps_commands_newest_first() {
    let (record, commands) = run(&failing_run());
    assert_eq!(record.status, SagaStatus::Compensating);
    let names: Vec<&str> = commands
        .iter()
        .map(|c| c.payload["command"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["RollbackAnonymization", "DeleteRetrievedImage"]);
    assert_eq!(commands[0].payload["correlation_id"], "c-1");
    assert_eq!(commands[0].payload["task_id"], "t-1");
    assert_eq!(commands[0].payload["reason"]["step"], "processing");
    assert_eq!(
        commands[1].idempotency_key,
        format!("{}:data_retrieval:compensation", record.id)
    );
    let failure = record.failure.as_ref().unwrap();
    assert_eq!(failure.step, "processing");
    assert_eq!(failure.error, "ProcessingFailed");
    assert!(record.due_at.is_some(), "the rollback deadline is set");
}

#[test]
fn the_rollback_events_compensate_the_saga() {
    let mut events = failing_run();
    let (record, commands) = run(&events);
    assert_eq!(commands.len(), 2);
    assert_eq!(
        record.status,
        SagaStatus::Compensating,
        "the anonymization's rollback to go"
    );
    let retrieval = record.steps[0].compensation.as_ref().unwrap();
    assert_eq!(
        retrieval.status,
        StepStatus::Completed,
        "no confirmation event: done once its command went out"
    );
    events.push(event(10, "AnonymizationRolledBack"));
    let (record, _) = run(&events);
    assert_eq!(record.status, SagaStatus::Compensated);
    assert!(record.due_at.is_none());
    assert_eq!(
        record.steps[1].compensation.as_ref().unwrap().ended_at,
        Some(1_767_225_610_000)
    );
}

#[test]
fn a_failure_of_the_first_step_has_nothing_to_compensate() {
    let (record, commands) = run(&[event(1, "RetrievalStarted"), event(2, "RetrievalFailed")]);
    assert_eq!(record.status, SagaStatus::Compensated);
    assert!(commands.is_empty());
}

#[test]
fn the_failure_error_comes_from_the_event_data() {
    let mut failed = event(2, "AnonymizationFailed");
    failed.data = json!({ "error": "DICOM header unreadable" });
    let (record, commands) = run(&[event(1, "ImageReadyForAnonymization"), failed]);
    assert_eq!(
        record.failure.unwrap().error,
        "AnonymizationFailed: DICOM header unreadable"
    );
    assert_eq!(commands.len(), 1);
    assert_eq!(commands[0].payload["command"], "DeleteRetrievedImage");
}

#[test]
fn overdue_rollbacks_fail_the_saga_and_a_late_one_still_settles_it() {
    let def = pipeline();
    let (mut record, _) = run(&failing_run());
    let due = record.due_at.unwrap();
    assert_eq!(expire(&mut record, due - 1), Expired::No);
    assert_eq!(expire(&mut record, due), Expired::RollbackOverdue);
    assert_eq!(record.status, SagaStatus::Failed);
    let error = &record.failure.as_ref().unwrap().error;
    assert!(
        error.ends_with("for: anonymization"),
        "only the rollback that needs an event: {error}"
    );
    apply(
        &def,
        &mut record,
        &[event(10, "AnonymizationRolledBack")],
        due + 5,
    );
    assert_eq!(record.status, SagaStatus::Compensated);
    assert_eq!(record.failure.unwrap().step, "processing");
}

#[test]
fn unknown_events_are_refused_and_a_full_log_keeps_the_newest_events() {
    let def = pipeline();
    let mut record = new_record(&def, "c-1", 0);
    let applied = apply(&def, &mut record, &[event(1, "OrderPlaced")], 0);
    assert_eq!(applied.refused.len(), 1);
    apply(&def, &mut record, &failing_run(), 0);
    // More progress events than the log keeps, all from before the run's events.
    let progress: Vec<Event> = (0..MAX_LOGGED_EVENTS as u32 + 3)
        .map(|n| Event {
            occurred_at: Some(format!("2025-01-01T00:{:02}:{:02}Z", n / 60, n % 60)),
            ..event(n + 100, "ImagesRetrieved")
        })
        .collect();
    let applied = apply(&def, &mut record, &progress, 0);
    let left_out = failing_run().len() + 3;
    assert_eq!(
        (applied.logged, applied.dropped),
        (progress.len() - left_out, left_out)
    );
    assert_eq!(record.dropped_events as usize, left_out);
    assert_eq!(record.events.len(), MAX_LOGGED_EVENTS);
    let kept = |n: usize| {
        record
            .events
            .iter()
            .any(|e| e.message_id == format!("m{n}"))
    };
    assert!((1..=9).all(kept), "the run's events are the newest");
    assert!(
        !kept(100) && kept(100 + left_out),
        "the first progress events left"
    );
    // The saga's state does not depend on the log: it ends as a saga with room in its log.
    let mut roomy = new_record(&def, "c-1", 0);
    apply(&def, &mut roomy, &failing_run(), 0);
    assert_eq!(record.status, SagaStatus::Compensating);
    assert_eq!(statuses(&record), statuses(&roomy));
    assert_eq!(record.failure, roomy.failure);
    // An event left out, delivered again, is left out again.
    let again = apply(&def, &mut record, &progress[..1], 0);
    assert_eq!((again.logged, again.dropped), (0, 1));
}

fn log_bytes(record: &SagaRecord) -> usize {
    record
        .events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap().len())
        .sum()
}

#[test]
fn events_with_ever_earlier_times_keep_the_log_within_its_bounds() {
    let def = pipeline();
    let mut record = new_record(&def, "c-1", 0);
    let types = [
        "ImagesRetrieved",
        "AnonymizationRequested",
        "ProcessingStarted",
    ];
    for n in 0..200 {
        let applied = apply(
            &def,
            &mut record,
            &[ever_earlier(n, types[n as usize % 3])],
            0,
        );
        assert_eq!(applied.logged + applied.dropped, 1);
    }
    assert!(record.events.len() <= MAX_LOGGED_EVENTS);
    assert!(
        log_bytes(&record) <= MAX_LOG_BYTES,
        "{} bytes",
        log_bytes(&record)
    );
    assert_eq!(record.events.len() + record.dropped_events as usize, 200);
    // The state still counts every event: each step started at its earliest event.
    let started: Vec<_> = record.steps.iter().map(|s| s.action.started_at).collect();
    let earliest = [198, 199, 197].map(|n| Some((1_800_000_000 - n) * 1_000));
    assert_eq!(started, earliest);
}

#[test]
fn a_running_saga_without_events_for_its_stall_timeout_is_marked_until_the_next_event() {
    let def = pipeline();
    let mut record = new_record(&def, "c-1", 0);
    apply(&def, &mut record, &[event(1, "RetrievalStarted")], 1_000);
    let due = record.due_at.expect("due at the stall timeout");
    assert_eq!(due, 1_000 + def.stall_timeout_ms as Millis);
    assert_eq!(expire(&mut record, due - 1), Expired::No);
    assert_eq!(expire(&mut record, due), Expired::Stalled);
    assert_eq!(
        (record.status, record.stalled_at, record.due_at),
        (SagaStatus::Running, Some(due), None)
    );
    apply(&def, &mut record, &[event(2, "ImagesRetrieved")], due + 10);
    assert_eq!(record.stalled_at, None, "a late event revives it");
    assert_eq!(
        record.due_at,
        Some(due + 10 + def.stall_timeout_ms as Millis)
    );
}

#[test]
fn events_are_checked() {
    let mut bad = event(1, "RetrievalStarted");
    bad.occurred_at = Some("yesterday".into());
    assert!(bad.check().unwrap_err().contains("RFC 3339"));
    bad = event(1, "");
    assert!(bad.check().unwrap_err().contains("event_type"));
    bad = event(1, "RetrievalStarted");
    bad.data = json!({ "blob": "x".repeat(MAX_EVENT_DATA_BYTES) });
    assert!(bad.check().unwrap_err().contains("limit"));
}

proptest! {
    /// Delivering the events in any order, with any of them repeated, ends in the same saga
    /// state and sends the same commands in the same order.
    #[test]
    fn order_and_duplicates_change_nothing(
        order in Just((0..11).collect::<Vec<usize>>()).prop_shuffle(),
        repeats in proptest::collection::vec(0usize..11, 0..6),
    ) {
        let mut events = failing_run();
        events.push(event(10, "AnonymizationRolledBack"));
        events.push(event(11, "ImagesRetrieved"));
        let (expected, expected_commands) = run(&events);
        let mut delivered: Vec<Event> = order.iter().map(|&i| events[i].clone()).collect();
        delivered.extend(repeats.iter().map(|&i| events[i].clone()));
        let (record, commands) = run(&delivered);
        prop_assert_eq!(record.status, SagaStatus::Compensated);
        prop_assert_eq!(statuses(&record), statuses(&expected));
        prop_assert_eq!(&record.failure, &expected.failure);
        prop_assert_eq!(record.events.len(), 11);
        for (got, want) in record.steps.iter().zip(&expected.steps) {
            prop_assert_eq!(got.action.ended_at, want.action.ended_at);
            prop_assert_eq!(&got.output, &want.output);
        }
        // A rollback that arrives before the failure leaves no command to send.
        let sent: Vec<&str> = commands.iter().map(|c| c.step.as_str()).collect();
        let all: Vec<&str> = expected_commands.iter().map(|c| c.step.as_str()).collect();
        prop_assert!(sent.iter().all(|s| all.contains(s)));
        prop_assert!(sent.windows(2).all(|w| w[0] != w[1]), "no command twice");
        let positions: Vec<usize> = sent.iter().map(|s| all.iter().position(|a| a == s).unwrap()).collect();
        prop_assert!(positions.windows(2).all(|w| w[0] < w[1]), "newest first");
    }
}

proptest! {
    /// No stored state and no event sequence makes the choreography rules panic: any status,
    /// any step and compensation states, any events (known or not, any times), then the
    /// sweeper's checks at any time.
    #[test]
    fn no_record_or_event_makes_the_rules_panic(
        status in prop_oneof![
            Just(SagaStatus::Running), Just(SagaStatus::Completed), Just(SagaStatus::Compensating),
            Just(SagaStatus::Compensated), Just(SagaStatus::Failed), Just(SagaStatus::Pending),
        ],
        states in proptest::collection::vec(
            (any_step_status(), proptest::option::of(any_step_status())), 3),
        types in proptest::collection::vec(0usize..14, 0..80),
        now in 0i64..10_000_000,
    ) {
        const TYPES: [&str; 14] = [
            "RetrievalStarted", "ImagesRetrieved", "RetrievalCompleted",
            "ImageReadyForAnonymization", "AnonymizationRequested", "AnonymizationCompleted",
            "AnonymizationFailed", "ImageReadyForProcessing", "ProcessingStarted",
            "ProcessingFailed", "AnonymizationRolledBack", "RetrievalFailed",
            "ProcessingCompleted", "Unknown",
        ];
        let def = pipeline();
        let mut record = new_record(&def, "c-1", 0);
        prop_assume!(record.steps.len() == states.len());
        record.status = status;
        record.due_at = Some(now / 2);
        for (step, (action, compensation)) in record.steps.iter_mut().zip(states) {
            step.action.status = action;
            step.compensation = compensation.map(|status| CallState { status, ..CallState::pending() });
        }
        let events: Vec<Event> = types.iter().enumerate()
            .map(|(i, &t)| event(i as u32 % 60, TYPES[t]))
            .collect();
        for chunk in events.chunks(7) {
            apply(&def, &mut record, chunk, now);
            for command in commands_due(&def, &record) {
                command_sent(&def, &mut record, &command.step, now);
            }
            expire(&mut record, now);
        }
        prop_assert!(record.events.len() <= MAX_LOGGED_EVENTS);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    /// However a flood of one run's events arrives (in any order, in any batches), the log keeps
    /// the same events within its bounds and the steps end in the same state.
    #[test]
    fn a_flood_keeps_the_same_bounded_log_in_any_order(
        order in Just((0..120).collect::<Vec<usize>>()).prop_shuffle(),
        batch in 1usize..40,
    ) {
        const TYPES: [&str; 7] = [
            "ImagesRetrieved", "RetrievalCompleted", "AnonymizationRequested",
            "AnonymizationCompleted", "ProcessingStarted", "ProcessingFailed",
            "AnonymizationRolledBack",
        ];
        // Pairs of events share a time: the message id orders them.
        let flood: Vec<Event> = (0..120)
            .map(|i| Event {
                message_id: format!("m{i}"),
                ..ever_earlier(i as u32 / 2, TYPES[i % TYPES.len()])
            })
            .collect();
        let def = pipeline();
        let mut expected = new_record(&def, "c-1", 0);
        apply(&def, &mut expected, &flood, 0);
        let mut record = new_record(&def, "c-1", 0);
        let delivered: Vec<Event> = order.iter().map(|&i| flood[i].clone()).collect();
        for chunk in delivered.chunks(batch) {
            apply(&def, &mut record, chunk, 0);
        }
        prop_assert!(record.events.len() <= MAX_LOGGED_EVENTS);
        prop_assert!(log_bytes(&record) <= MAX_LOG_BYTES);
        let ids = |r: &SagaRecord| {
            let mut ids: Vec<String> = r.events.iter().map(|e| e.message_id.clone()).collect();
            ids.sort();
            ids
        };
        prop_assert_eq!(ids(&record), ids(&expected));
        prop_assert_eq!(&record.steps, &expected.steps);
        prop_assert_eq!(record.dropped_events, expected.dropped_events);
    }
}
