use super::*;
use saga::adapters::memory::MemoryStore;
use saga::record::{SagaRecord, SagaStatus};
use saga::stored::Stored;
use saga::table::TableRules;

fn definitions() -> Definitions {
    // Addresses stand in for the deployment's; the choreography's settings keep theirs.
    let env = |name: &str| {
        let setting = name.starts_with("CHOREOGRAPHY_");
        (!setting).then(|| format!("http://{}.example", name.to_lowercase()))
    };
    Definitions::from_files(Definitions::bundled_files(), env).unwrap()
}

fn body(response: Result<Response<Body>, Problem>) -> (u16, Value) {
    let response = response.unwrap_or_else(Problem::into_response);
    let Body::Text(text) = response.body() else {
        panic!("a text body")
    };
    (
        response.status().as_u16(),
        serde_json::from_str(text).unwrap(),
    )
}

fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn scope() -> Scope {
    Scope {
        types: vec!["image".into()],
        shards: TableRules::default().list_shards,
    }
}

#[test]
fn every_deployed_type_is_listed_with_its_version() {
    let (status, listing) = body(Ok(list(&definitions())));
    assert_eq!(status, 200);
    let image = listing["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["type"] == "image")
        .unwrap();
    assert_eq!(image["mode"], "orchestration");
    assert_eq!(image["steps"], 3);
    assert_eq!(image["version"].as_str().unwrap().len(), 16);
    let modes: Vec<&str> = listing["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["mode"].as_str().unwrap())
        .collect();
    assert!(modes.contains(&"choreography"));
}

#[tokio::test]
async fn a_definition_comes_with_its_graph_and_file() {
    let table = SagaTable::<MemoryStore>::default();
    let defs = definitions();
    let (status, image) = body(one(&table, &defs, "image", &query(&[])).await);
    assert_eq!(status, 200, "{image}");
    assert_eq!(image["version"], image["deployed_version"]);
    assert_eq!(image["definition"]["type"], "image");
    let nodes = image["graph"]["nodes"].as_array().unwrap();
    let labels: Vec<&str> = nodes.iter().map(|n| n["label"].as_str().unwrap()).collect();
    assert_eq!(
        labels,
        [
            "start",
            "anonymize",
            "tokenize",
            "tokenize",
            "process",
            "end"
        ]
    );
    assert_eq!(nodes[3]["kind"], "compensation");
    let (status, campaign) = body(one(&table, &defs, "campaign", &query(&[])).await);
    assert_eq!(status, 200);
    let kinds: Vec<&str> = campaign["graph"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"fork") && kinds.contains(&"join"),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn unknown_types_versions_and_parameters_are_problems() {
    let table = SagaTable::<MemoryStore>::default();
    let defs = definitions();
    let ask = |t: &'static str, q: &'static [(&'static str, &'static str)]| {
        let (table, defs) = (&table, &defs);
        async move { body(one(table, defs, t, &query(q)).await).0 }
    };
    assert_eq!(ask("nope", &[]).await, 404);
    assert_eq!(ask("image", &[("version", "0123456789abcdef")]).await, 404);
    assert_eq!(ask("image", &[("version", "latest")]).await, 400);
    assert_eq!(ask("image", &[("color", "red")]).await, 400);
}

#[tokio::test]
async fn a_kept_version_is_read_back_from_the_table() {
    let table = SagaTable::new(MemoryStore::default(), TableRules::default());
    let old =
        r#"{"type": "image", "steps": [{"name": "only", "action": {"publish": {"topic": "t"}}}]}"#;
    let version = saga::definition::version_of(old).unwrap();
    table
        .keep_text(&version_key("image", &version), old)
        .await
        .unwrap();
    let q = query(&[("version", version.as_str())]);
    let (status, image) = body(one(&table, &definitions(), "image", &q).await);
    assert_eq!(status, 200, "{image}");
    assert_eq!(image["version"], version.as_str());
    assert_ne!(image["version"], image["deployed_version"]);
    assert_eq!(image["graph"]["nodes"][1]["label"], "only");
}

#[tokio::test]
async fn the_overview_counts_the_window_s_sagas_and_states_its_bound() {
    let table = SagaTable::new(MemoryStore::default(), TableRules::default());
    let now = 10 * 3_600_000;
    for (i, (status, at)) in [
        (SagaStatus::Completed, now - 60_000),
        (SagaStatus::Compensated, now - 120_000),
        (SagaStatus::Completed, now - 2 * 3_600_000),
    ]
    .into_iter()
    .enumerate()
    {
        let id = uuid::Uuid::from_u128(i as u128).to_string();
        let mut record = SagaRecord::fresh(id, "image", ["a"], json!({}), at);
        record.status = status;
        record.ended_at = Some(at + 100 * (i as Millis + 1));
        table.create(&mut Stored::from(record), at).await.unwrap();
    }
    let defs = definitions();
    let (status, stats) = body(
        overview(
            &table,
            &scope(),
            &defs,
            "image",
            &query(&[("window", "1h")]),
            now,
        )
        .await,
    );
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["window"], "1h");
    assert_eq!(
        (stats["sagas"].as_u64(), stats["max_sagas"].as_u64()),
        (Some(2), Some(1000))
    );
    assert_eq!(stats["complete"], true);
    assert_eq!(stats["by_status"]["COMPENSATED"], 1);
    assert_eq!(stats["compensation_rate"], 0.5);
    assert_eq!(stats["latency_ms"]["p50"], 100);
    assert_eq!(stats["buckets"].as_array().unwrap().len(), 12);
    for good in ["1m", "43200m", "720h", "30d"] {
        let q = query(&[("window", good)]);
        let (status, _) = body(overview(&table, &scope(), &defs, "image", &q, now).await);
        assert_eq!(status, 200, "{good}");
    }
    let (_, day) = body(overview(&table, &scope(), &defs, "image", &query(&[]), now).await);
    assert_eq!(
        (day["window"].as_str(), day["sagas"].as_u64()),
        (Some("24h"), Some(3))
    );
    for bad in [
        "0m", "31d", "721h", "43201m", "2w", "h", "-1h", "+1h", "01h",
    ] {
        let q = query(&[("window", bad)]);
        let (status, _) = body(overview(&table, &scope(), &defs, "image", &q, now).await);
        assert_eq!(status, 400, "{bad}");
    }
    let (status, _) = body(overview(&table, &scope(), &defs, "nope", &query(&[]), now).await);
    assert_eq!(status, 404);
}
