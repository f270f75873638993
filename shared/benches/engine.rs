//! One engine transition: deciding the next call and applying its outcome.

use criterion::{Criterion, criterion_group, criterion_main};
use saga::definition::Definitions;
use saga::engine::{self, Next, Outcome};
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
            let Next::Run(call) = engine::next(image, &record, 1) else {
                unreachable!()
            };
            engine::begin(&mut record, &call, 1);
            engine::record_outcome(
                image,
                &mut record,
                &call,
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
        let Next::Run(call) = engine::next(order, &record, 1) else {
            unreachable!()
        };
        engine::begin(&mut record, &call, 1);
        let output = json!({"items": [{"producto_id": 1, "nombre": "Café", "cantidad": 2, "precio_unitario": 2.5, "subtotal": 5.0}], "total": 5.0, "reserva_id": "r", "id": 7});
        engine::record_outcome(
            order,
            &mut record,
            &call,
            Outcome::Succeeded(output),
            2,
            0.5,
        );
    }
    c.bench_function("order: next + begin + record_outcome (step 4 of 4)", |b| {
        b.iter(|| {
            let mut record = record.clone();
            let Next::Run(call) = engine::next(order, &record, 3) else {
                unreachable!()
            };
            engine::begin(&mut record, &call, 3);
            engine::record_outcome(
                order,
                &mut record,
                &call,
                Outcome::Succeeded(json!({"estado": "confirmado"})),
                4,
                0.5,
            );
            black_box(record)
        })
    });
}

criterion_group!(benches, transitions);
criterion_main!(benches);
