//! Actions that await an answer by callback or reply, driven as the worker drives them.

use super::driver::{Effect, Event, Stop, hand_on, on};
use super::group_tests::{HOLDER, calls, finished, names, ok, step};
use super::*;
use crate::callback::Callback;
use crate::definition::Definitions;
use crate::record::Answer;
use serde_json::{Value, json};

fn load(text: &str) -> Result<SagaDefinition, crate::definition::LoadError> {
    let env = |name: &str| (name == "SAGA_API_URL").then(|| "https://api.example/".to_string());
    let defs = Definitions::from_files([("g.json", text)], env)?;
    Ok((**defs.get("g").expect("loaded")).clone())
}

/// `reserve`, then `pay` (answers by callback within 60 s, heartbeats every 10 s, one
/// attempt unless `attempts` says more), then `confirm`.
fn paying(attempts: u32) -> SagaDefinition {
    let mut pay = step("pay");
    pay["action"]["http"]["body"] =
        json!({"reply_to": "${/callback/url}", "token": "${/callback/token}"});
    pay["await"] = json!({"timeout_ms": 60_000, "heartbeat_ms": 10_000});
    pay["retry"] = json!({"max_attempts": attempts, "initial_interval_ms": 10});
    let text = json!({"type": "g", "steps": [step("reserve"), pay, step("confirm")]});
    load(&text.to_string()).unwrap()
}

fn started(def: &SagaDefinition) -> SagaRecord {
    let mut record = new_record(def, "s".into(), json!({}), 0);
    record.callback_secret = Some("secret".into());
    record
}

/// Claims the saga, finishes `reserve` at 1, and returns pay's call.
fn pay_call(def: &SagaDefinition, record: &mut SagaRecord) -> Call {
    let first = calls(&on(def, record, Event::Claimed, 0, &HOLDER));
    let effects = on(def, record, finished(&first[0], ok(json!(1))), 1, &HOLDER);
    let pay = calls(&effects);
    assert_eq!(names(def, &pay), ["pay"]);
    pay.into_iter().next().unwrap()
}

fn header(call: &Call, name: &str) -> String {
    let Ok(Request::Http { headers, .. }) = &call.request else {
        panic!("{call:?}")
    };
    headers.iter().find(|(n, _)| n == name).unwrap().1.clone()
}

fn succeeded(output: Value) -> Answer {
    Answer {
        succeeded: true,
        output: Some(output),
        error: None,
        retryable: false,
        at: 0,
    }
}

#[test]
fn the_call_carries_a_signed_callback_url_and_its_acknowledgement_parks_the_saga() {
    let def = paying(1);
    let mut record = started(&def);
    let pay = pay_call(&def, &mut record);
    let url = header(&pay, CALLBACK_HEADER);
    let token = url.strip_prefix("https://api.example/callbacks/").unwrap();
    let named = Callback::parse(token).unwrap();
    assert_eq!(
        (named.saga_id.as_str(), named.step, named.attempt),
        ("s", 1, 1)
    );
    assert!(named.signed_by(token, "secret"));
    let Ok(Request::Http { body, .. }) = &pay.request else {
        panic!()
    };
    assert_eq!(body, &json!({"reply_to": url, "token": token}));
    // The 2xx is the acknowledgement: nothing in flight, parked until the heartbeat is due.
    let effects = on(
        &def,
        &mut record,
        finished(&pay, ok(json!({"accepted": true}))),
        2,
        &HOLDER,
    );
    assert_eq!(effects[1], Effect::Stop(Stop::Parked(2 + 10_000)));
    assert_eq!(record.steps[1].action.status, StepStatus::Running);
    assert_eq!(record.steps[1].action.acknowledged_at, Some(2));
    // A claim meanwhile never sends it again.
    hand_on(&mut record);
    let effects = on(&def, &mut record, Event::Claimed, 5_000, &HOLDER);
    assert!(calls(&effects).is_empty(), "{effects:?}");
}

#[test]
fn an_answer_completes_the_step_with_its_output_and_a_second_one_is_refused() {
    let def = paying(1);
    let mut record = started(&def);
    let pay = pay_call(&def, &mut record);
    on(&def, &mut record, finished(&pay, ok(json!({}))), 2, &HOLDER);
    assert_eq!(
        answer(&def, &mut record, (1, 2), succeeded(json!(1))),
        Err(NotAwaiting::NotNow),
        "another attempt's token"
    );
    assert_eq!(
        answer(&def, &mut record, (0, 1), succeeded(json!(1))),
        Err(NotAwaiting::NoSuchStep)
    );
    answer(&def, &mut record, (1, 1), succeeded(json!({"paid": 5}))).unwrap();
    assert_eq!(
        answer(&def, &mut record, (1, 1), succeeded(json!({"paid": 6}))),
        Err(NotAwaiting::NotNow),
        "a second answer"
    );
    hand_on(&mut record);
    let effects = on(&def, &mut record, Event::Claimed, 3_000, &HOLDER);
    assert_eq!(names(&def, &calls(&effects)), ["confirm"]);
    assert_eq!(record.steps[1].output, Some(json!({"paid": 5})));
    assert_eq!(record.steps[1].action.status, StepStatus::Completed);
    // Once applied, a late answer is refused too.
    assert_eq!(
        answer(&def, &mut record, (1, 1), succeeded(json!(2))),
        Err(NotAwaiting::NotNow)
    );
}

#[test]
fn heartbeats_keep_the_call_alive_and_silence_times_it_out_then_it_is_retried() {
    let def = paying(2);
    let mut record = started(&def);
    let pay = pay_call(&def, &mut record);
    on(&def, &mut record, finished(&pay, ok(json!({}))), 2, &HOLDER);
    assert_eq!(heartbeat(&def, &mut record, (1, 1), 8_000), Ok(18_000));
    hand_on(&mut record);
    let effects = on(&def, &mut record, Event::Claimed, 12_000, &HOLDER);
    assert_eq!(effects.last(), Some(&Effect::Stop(Stop::Parked(18_000))));
    // No heartbeat by 18 s: an unknown outcome; the retry sends attempt 2, a new token.
    hand_on(&mut record);
    let effects = on(&def, &mut record, Event::Claimed, 18_000, &HOLDER);
    let effects = match &effects[..] {
        [Effect::Write { .. }, Effect::SleepUntil(at)] => {
            on(&def, &mut record, Event::TimerFired, *at, &HOLDER)
        }
        _ => effects,
    };
    let retry = calls(&effects).remove(0);
    assert_eq!((retry.step, retry.attempt), (1, 2));
    assert_ne!(
        header(&retry, CALLBACK_HEADER),
        header(&pay, CALLBACK_HEADER)
    );
    assert!(record.steps[1].action.may_have_taken_effect);
}

#[test]
fn a_timeout_with_no_attempt_left_compensates_the_call_whose_outcome_is_unknown() {
    let mut def = paying(1);
    def.steps[1].compensation = def.steps[0].compensation.clone();
    let mut record = started(&def);
    let pay = pay_call(&def, &mut record);
    on(&def, &mut record, finished(&pay, ok(json!({}))), 2, &HOLDER);
    hand_on(&mut record);
    let effects = on(&def, &mut record, Event::Claimed, 70_000, &HOLDER);
    assert_eq!(names(&def, &calls(&effects)), ["pay/undo"]);
    assert_eq!(
        record.steps[1].action.failure,
        Some(crate::outcome::FailureClass::Timeout)
    );
}

#[test]
fn a_refusal_answered_later_fails_the_step_and_a_cancel_abandons_the_wait() {
    let def = paying(1);
    let mut record = started(&def);
    let pay = pay_call(&def, &mut record);
    on(&def, &mut record, finished(&pay, ok(json!({}))), 2, &HOLDER);
    let refusal = Answer {
        succeeded: false,
        output: None,
        error: Some("card declined".into()),
        retryable: false,
        at: 3,
    };
    answer(&def, &mut record, (1, 1), refusal).unwrap();
    hand_on(&mut record);
    let effects = on(&def, &mut record, Event::Claimed, 4, &HOLDER);
    assert_eq!(names(&def, &calls(&effects)), ["reserve/undo"]);
    assert_eq!(record.failure.as_ref().unwrap().error, "card declined");

    // Cancelled while awaiting: the outcome is unknown, so pay is undone too.
    let mut def = paying(1);
    def.steps[1].compensation = def.steps[0].compensation.clone();
    let mut record = started(&def);
    let pay = pay_call(&def, &mut record);
    on(&def, &mut record, finished(&pay, ok(json!({}))), 2, &HOLDER);
    record.cancel_requested = true;
    hand_on(&mut record);
    let effects = on(&def, &mut record, Event::Claimed, 5, &HOLDER);
    assert_eq!(names(&def, &calls(&effects)), ["pay/undo"]);
    assert_eq!(
        answer(&def, &mut record, (1, 1), succeeded(json!(1))),
        Err(NotAwaiting::NotNow)
    );
}

#[test]
fn a_publish_that_awaits_a_reply_carries_its_topic_and_token_and_is_answered_by_key() {
    let text = json!({"type": "g", "steps": [step("reserve"), {
        "name": "tokenize",
        "action": {"publish": {"topic": "t-in", "payload": {}}},
        "await": {"reply_topic": "t-out", "timeout_ms": 5_000},
    }]});
    let def = load(&text.to_string()).unwrap();
    let mut record = started(&def);
    let first = calls(&on(&def, &mut record, Event::Claimed, 0, &HOLDER));
    let effects = on(
        &def,
        &mut record,
        finished(&first[0], ok(json!(1))),
        1,
        &HOLDER,
    );
    let publish = calls(&effects).remove(0);
    let Ok(Request::Publish { properties, .. }) = &publish.request else {
        panic!()
    };
    assert!(properties.contains(&(REPLY_TO.to_string(), "t-out".to_string())));
    let (_, token) = properties
        .iter()
        .find(|(name, _)| name == REPLY_TOKEN)
        .expect("a reply token");
    let named = Callback::parse(token).expect("shaped as a token");
    assert_eq!((named.saga_id.as_str(), named.step), ("s", 1));
    assert_eq!(named.attempt, publish.attempt);
    let secret = record.callback_secret.as_deref().unwrap();
    assert!(named.signed_by(token, secret));
    assert_eq!(replied_step(&def, "s", &publish.idempotency_key), Some(1));
    assert_eq!(replied_step(&def, "s", "s:reserve:action"), None);
    assert_eq!(replied_step(&def, "other", &publish.idempotency_key), None);
}

#[test]
fn a_saga_started_without_a_secret_publishes_its_reply_topic_without_a_token() {
    let text = json!({"type": "g", "steps": [{
        "name": "tokenize",
        "action": {"publish": {"topic": "t-in", "payload": {}}},
        "await": {"reply_topic": "t-out", "timeout_ms": 5_000},
    }]});
    let def = load(&text.to_string()).unwrap();
    let mut record = new_record(&def, "s".into(), json!({}), 0);
    let publish = calls(&on(&def, &mut record, Event::Claimed, 0, &HOLDER)).remove(0);
    let Ok(Request::Publish { properties, .. }) = &publish.request else {
        panic!("{publish:?}")
    };
    let names: Vec<_> = properties.iter().map(|(name, _)| name.as_str()).collect();
    assert!(
        names.contains(&REPLY_TO) && !names.contains(&REPLY_TOKEN),
        "{names:?}"
    );
}

#[test]
fn awaits_are_validated_with_field_paths() {
    let refused = |awaited: Value, action: Value| {
        let text =
            json!({"type": "g", "steps": [{"name": "a", "action": action, "await": awaited}]});
        load(&text.to_string()).unwrap_err().to_string()
    };
    let http = json!({"http": {"url": "http://p/a"}});
    let publish = json!({"publish": {"topic": "t"}});
    let timeout = json!({"timeout_ms": 1_000});
    assert!(
        refused(
            json!({"timeout_ms": 1_000, "reply_topic": "r"}),
            http.clone()
        )
        .contains("steps[0].await.reply_topic")
    );
    assert!(refused(timeout.clone(), publish.clone()).contains("steps[0].await.reply_topic"));
    assert!(refused(json!({"timeout_ms": 0}), http.clone()).contains("steps[0].await.timeout_ms"));
    assert!(
        refused(
            json!({"timeout_ms": 1_000, "reply_topic": "r", "heartbeat_ms": 5}),
            publish
        )
        .contains("heartbeat_ms")
    );
    // A callback URL needs the API's public URL.
    let text = json!({"type": "g", "steps": [{"name": "a", "action": http, "await": timeout}]});
    let missing =
        Definitions::from_files([("g.json", text.to_string().as_str())], |_| None).unwrap_err();
    assert!(missing.to_string().contains("SAGA_API_URL"), "{missing}");
    // /callback only in an action that awaits one.
    let mut plain = step("b");
    plain["action"]["http"]["body"] = json!("${/callback/url}");
    let text = json!({"type": "g", "steps": [plain]});
    assert!(
        load(&text.to_string())
            .unwrap_err()
            .to_string()
            .contains("/callback")
    );
}

#[test]
fn a_saga_awaiting_an_answer_is_parked_even_when_its_timeout_is_near() {
    let mut def = paying(1);
    def.steps[1].await_answer.as_mut().unwrap().timeout_ms = 500;
    let mut record = started(&def);
    let pay = pay_call(&def, &mut record);
    let effects = on(&def, &mut record, finished(&pay, ok(json!({}))), 2, &HOLDER);
    // Not held in the invocation (an answer must find nobody holding the saga).
    assert_eq!(effects[1], Effect::Stop(Stop::Parked(502)));
    assert!(record.lease.is_none());
}
