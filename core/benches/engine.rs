//! One engine transition: deciding the next call and applying its outcome.

use criterion::{Criterion, criterion_group, criterion_main};
use saga_core::choreography::fixtures;
use saga_core::definition::Definitions;
use saga_core::engine::{self, Begun, Next};
use saga_core::outcome::Outcome;
use serde_json::json;
use std::hint::black_box;

fn transitions(c: &mut Criterion) {
    let definitions = Definitions::from_files(
        [
            ("image.json", include_str!("../../definitions/image.json")),
            ("order.json", include_str!("../../definitions/order.json")),
        ],
        |_| Some("http://127.0.0.1:1".into()),
    )
    .unwrap();
    let image = definitions.get("image").unwrap();
    let record = engine::new_record(
        image,
        "s".into(),
        json!({"image_id": "img", "data": "x"}),
        0,
    );
    c.bench_function("image: next + begin + record_outcome (one step)", |b| {
        b.iter(|| {
            let mut record = record.clone();
            let Next::Run(calls) = engine::next(image, &record, 1, Begun::InFlight) else {
                unreachable!()
            };
            let call = &calls[0];
            engine::begin(image, &mut record, call, 1);
            engine::record_outcome(
                image,
                &mut record,
                call,
                Outcome::Succeeded(json!({"ok": true})),
                2,
                0.5,
            );
            black_box(record)
        })
    });

    // The order saga's last step renders a body from earlier outputs: the heaviest template.
    let order = definitions.get("order").unwrap();
    let mut record = engine::new_record(
        order,
        "s".into(),
        json!({"cliente": "c", "items": [{"producto_id": 1, "cantidad": 2}]}),
        0,
    );
    for _ in 0..3 {
        let Next::Run(calls) = engine::next(order, &record, 1, Begun::InFlight) else {
            unreachable!()
        };
        let call = &calls[0];
        engine::begin(order, &mut record, call, 1);
        let output = json!({"items": [{"producto_id": 1, "nombre": "Café", "cantidad": 2, "precio_unitario": 2.5, "subtotal": 5.0}], "total": 5.0, "reserva_id": "r", "id": 7});
        engine::record_outcome(order, &mut record, call, Outcome::Succeeded(output), 2, 0.5);
    }
    c.bench_function("order: next + begin + record_outcome (step 4 of 4)", |b| {
        b.iter(|| {
            let mut record = record.clone();
            let Next::Run(calls) = engine::next(order, &record, 3, Begun::InFlight) else {
                unreachable!()
            };
            let call = &calls[0];
            engine::begin(order, &mut record, call, 3);
            engine::record_outcome(
                order,
                &mut record,
                call,
                Outcome::Succeeded(json!({"estado": "confirmado"})),
                4,
                0.5,
            );
            black_box(record)
        })
    });
}

/// The choreography monitor's pure step: one failure event applied to a saga whose first two
/// steps completed, and the compensation commands it owes.
fn choreography(c: &mut Criterion) {
    let def = &fixtures::pipeline();
    let mut record = saga_core::choreography::new_record(def, "c-1", 0);
    let mut run = fixtures::failing_run();
    let failure = [run.pop().expect("the run ends with its failure")];
    saga_core::choreography::apply(def, &mut record, &run, 1);
    c.bench_function("choreography: apply a failure event + commands due", |b| {
        b.iter(|| {
            let mut record = record.clone();
            saga_core::choreography::apply(def, &mut record, &failure, 2);
            black_box(saga_core::choreography::commands_due(def, &record))
        })
    });
}

criterion_group!(benches, transitions, choreography);
criterion_main!(benches);
