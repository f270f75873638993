//! devstack pump: plays the AWS part that `cargo lambda watch` does not, against DynamoDB
//! Local. It polls the saga table's stream and invokes run-step through the watch server, as
//! Lambda's event source mapping does in AWS, with the mapping's settings as template.yaml
//! declares them (`PUMP_MAPPING`, JSON from `dev/infra.py mapping`): its filter patterns, batch
//! size, parallelization factor (lanes, in order per saga), retries, bisection of a failed
//! batch, and partial batch responses. It also invokes the sweeper every `SWEEP_INTERVAL_MS`
//! (1000), as the EventBridge schedule does. An invocation unanswered after
//! `INVOKE_TIMEOUT_MS` (60000) counts as failed.
//!
//! devstack check: loads the settings and the saga definitions as the functions' cold start
//! does (the same code, the same environment), so the local stack can refuse to start with the
//! loader's error instead of serving functions whose every cold start fails.

mod backlog;
mod mapping;

use aws_sdk_dynamodbstreams::Client as StreamsClient;
use aws_sdk_dynamodbstreams::types::{Record, ShardIteratorType};
use mapping::Mapping;
use saga_dynamodb::DynamoStore;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let command = std::env::args().nth(1).unwrap_or_default();
    match command.as_str() {
        "pump" => pump().await,
        "check" => check(),
        "backlog" => {
            let count = std::env::args().nth(2).and_then(|n| n.parse().ok());
            let count = count.ok_or("usage: devstack backlog N")?;
            backlog::seed(count, &env_or("SAGA_TABLE", "sagas")).await
        }
        _ => {
            eprintln!("usage: devstack pump   (with PUMP_MAPPING from dev/infra.py mapping)");
            eprintln!("       devstack check   (settings and definitions, as a cold start)");
            eprintln!("       devstack backlog N   (N image sagas whose invocations died)");
            std::process::exit(2)
        }
    }
}

/// Exits with the cold start's error, if any, on stderr.
fn check() -> Result<(), Error> {
    let loaded = saga::config::Config::from_env()
        .map_err(|e| e.to_string())
        .and_then(|config| {
            let dir = config.definitions_dir.as_deref();
            saga::definition_files::load(dir, config.step_time_limit_ms())
                .map_err(|e| e.to_string())
        });
    match loaded {
        Ok(definitions) => {
            println!("check: saga types {}", definitions.types().join(", "));
            Ok(())
        }
        Err(error) => {
            eprintln!("{error}");
            std::process::exit(1)
        }
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

async fn pump() -> Result<(), Error> {
    let config = saga_dynamodb::aws().await;
    let store = DynamoStore::connect(&config, &env_or("SAGA_TABLE", "sagas"));
    let mut streams_config = aws_sdk_dynamodbstreams::config::Builder::from(&config);
    if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL_DYNAMODB") {
        streams_config = streams_config.endpoint_url(endpoint);
    }
    let streams = StreamsClient::from_conf(streams_config.build());
    let invoke_url = format!(
        "{}/2015-03-31/functions/{}/invocations",
        env_or("INVOKE_URL", "http://127.0.0.1:9000"),
        env_or("RUN_STEP_FUNCTION", "run-step")
    );
    let mapping: Arc<Mapping> = Arc::new(serde_json::from_str(
        &std::env::var("PUMP_MAPPING").map_err(|_| "PUMP_MAPPING is not set")?,
    )?);
    let parallelism = mapping.parallelization.max(1);
    // Fault testing: deliver every record a second time, on another lane, concurrently.
    let duplicate = env_or("PUMP_DUPLICATE_DELIVERY", "0") == "1";
    let stream_arn = store
        .client()
        .describe_table()
        .table_name(store.table())
        .send()
        .await?
        .table
        .and_then(|t| t.latest_stream_arn)
        .ok_or("the saga table has no stream")?;
    println!(
        "pump: {stream_arn} -> {invoke_url} ({mapping}{})",
        if duplicate {
            ", every record delivered twice"
        } else {
            ""
        }
    );

    // An invocation whose function process died never answers through the watch server; give
    // up on it as Lambda reports a crashed invocation, and let the lane retry the batch.
    let invoke_timeout = Duration::from_millis(env_or("INVOKE_TIMEOUT_MS", "60000").parse()?);
    saga_dynamodb::tls::install_crypto_provider();
    let http = reqwest::Client::builder().timeout(invoke_timeout).build()?;
    let invoke_base = env_or("INVOKE_URL", "http://127.0.0.1:9000");
    let sweep_every = Duration::from_millis(env_or("SWEEP_INTERVAL_MS", "1000").parse()?);
    tokio::spawn(tick_sweeper(
        http.clone(),
        format!("{invoke_base}/2015-03-31/functions/sweeper/invocations"),
        sweep_every,
    ));
    let lanes: Vec<mpsc::UnboundedSender<Value>> = (0..parallelism)
        .map(|lane| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(deliver(
                lane,
                rx,
                http.clone(),
                invoke_url.clone(),
                mapping.clone(),
            ));
            tx
        })
        .collect();

    let mut iterators: HashMap<String, Option<String>> = HashMap::new();
    let mut since_describe = Duration::MAX;
    let mut quiet_polls = 0u32;
    loop {
        if since_describe > Duration::from_secs(1) {
            discover_shards(&streams, &stream_arn, &mut iterators).await?;
            since_describe = Duration::ZERO;
        }
        let mut delivered = 0;
        let mut seen = 0;
        for (shard, iterator) in iterators.iter_mut() {
            let Some(current) = iterator.clone() else {
                continue;
            };
            let page = match streams
                .get_records()
                .shard_iterator(current)
                .limit(1000)
                .send()
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    eprintln!("pump: get_records on {shard}: {e}");
                    *iterator = None;
                    continue;
                }
            };
            *iterator = page.next_shard_iterator;
            let records = page.records.unwrap_or_default();
            seen += records.len();
            for record in records {
                if let Some((key, event_record)) = lambda_record(&record, &stream_arn)
                    .filter(|(_, event_record)| mapping.admits(event_record))
                {
                    let lane = lane_of(&key, lanes.len());
                    if duplicate {
                        lanes[(lane + 1) % lanes.len()].send(event_record.clone())?;
                    }
                    lanes[lane].send(event_record)?;
                    delivered += 1;
                }
            }
        }
        quiet_polls = if seen == 0 {
            quiet_polls.saturating_add(1)
        } else {
            0
        };
        let pause = poll_pause(delivered, quiet_polls);
        tokio::time::sleep(Duration::from_millis(pause)).await;
        since_describe += Duration::from_millis(pause);
    }
}

/// Empty polls in a row (a second's worth) after which the stream counts as idle.
const IDLE_AFTER_POLLS: u32 = 50;

/// Milliseconds to wait before the next poll. While records come, polls follow closely, and
/// under load short pauses let each gather a batch instead of a record or two; once the stream
/// has been empty for a second, it is polled ten times a second (Lambda polls four times), so
/// an idle stack asks DynamoDB Local for a fifth of the polls.
fn poll_pause(delivered: usize, quiet_polls: u32) -> u64 {
    if delivered > 0 {
        10
    } else if quiet_polls < IDLE_AFTER_POLLS {
        20
    } else {
        100
    }
}

/// Adds iterators for shards not seen yet, reading them from their start.
async fn discover_shards(
    streams: &StreamsClient,
    stream_arn: &str,
    iterators: &mut HashMap<String, Option<String>>,
) -> Result<(), Error> {
    let mut start = None;
    loop {
        let description = streams
            .describe_stream()
            .stream_arn(stream_arn)
            .set_exclusive_start_shard_id(start.take())
            .send()
            .await?
            .stream_description
            .ok_or("no stream description")?;
        for shard in description.shards.unwrap_or_default() {
            let Some(id) = shard.shard_id else { continue };
            if iterators.contains_key(&id) {
                continue;
            }
            let iterator = streams
                .get_shard_iterator()
                .stream_arn(stream_arn)
                .shard_id(&id)
                .shard_iterator_type(ShardIteratorType::TrimHorizon)
                .send()
                .await?
                .shard_iterator;
            iterators.insert(id, iterator);
        }
        match description.last_evaluated_shard_id {
            Some(last) => start = Some(last),
            None => return Ok(()),
        }
    }
}

/// The record as Lambda delivers it, with the saga id it belongs to.
fn lambda_record(record: &Record, stream_arn: &str) -> Option<(String, Value)> {
    let change = record.dynamodb.as_ref()?;
    let image = change.new_image.clone()?;
    let key = match image.get("id") {
        Some(aws_sdk_dynamodbstreams::types::AttributeValue::S(id)) => id.clone(),
        _ => return None,
    };
    let keys = serde_dynamo::Item::from(change.keys.clone().unwrap_or_default());
    let new_image = serde_dynamo::Item::from(image);
    Some((
        key,
        json!({
            "eventID": record.event_id,
            "eventName": record.event_name.as_ref().map(|n| n.as_str()),
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": record.aws_region,
            "eventSourceARN": stream_arn,
            "dynamodb": {
                "ApproximateCreationDateTime": change.approximate_creation_date_time.map(|t| t.secs()),
                "Keys": keys,
                "NewImage": new_image,
                "SequenceNumber": change.sequence_number,
                "SizeBytes": change.size_bytes,
                "StreamViewType": "NEW_IMAGE",
            },
        }),
    ))
}

fn lane_of(key: &str, lanes: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    (hasher.finish() % lanes as u64) as usize
}

/// One lane: invokes run-step with batches of its records, in arrival order. A failed batch
/// is retried (bisected first, if the mapping says so) up to the mapping's retries, then
/// dropped as the mapping would send it to its on-failure destination; with partial batch
/// responses, only the records from the first reported failure on are retried.
async fn deliver(
    lane: usize,
    mut records: mpsc::UnboundedReceiver<Value>,
    http: reqwest::Client,
    invoke_url: String,
    mapping: Arc<Mapping>,
) {
    let mut batch = Vec::with_capacity(mapping.batch_size);
    while records.recv_many(&mut batch, mapping.batch_size).await > 0 {
        let mut pending = VecDeque::from([(std::mem::take(&mut batch), 0_u32)]);
        while let Some((records, retries)) = pending.pop_front() {
            let event = json!({ "Records": records });
            let failed_from = match invoke(&http, &invoke_url, &event).await {
                Ok(failures) => mapping.retry_from(&records, &failures),
                Err(e) => {
                    eprintln!("pump lane {lane}: invocation failed: {e}");
                    Some(0)
                }
            };
            let Some(from) = failed_from else { continue };
            let rest = records[from..].to_vec();
            if !mapping.may_retry(retries) {
                eprintln!(
                    "pump lane {lane}: {} records dropped after {retries} retries (the mapping's on-failure destination)",
                    rest.len()
                );
                continue;
            }
            tokio::time::sleep(Duration::from_millis(200 * u64::from(retries + 1).min(10))).await;
            for part in mapping.split_for_retry(rest, from == 0).into_iter().rev() {
                pending.push_front((part, retries + 1));
            }
        }
    }
}

/// Invokes the sweeper with a scheduled event, forever.
async fn tick_sweeper(http: reqwest::Client, url: String, every: Duration) {
    let event = json!({
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "detail": {},
    });
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        if let Err(e) = invoke(&http, &url, &event).await {
            eprintln!("pump: sweeper invocation failed: {e}");
        }
    }
}

/// Invokes a function; for run-step, returns the batch item failures it reported.
async fn invoke(http: &reqwest::Client, url: &str, event: &Value) -> Result<Vec<String>, Error> {
    let response = http
        .post(url)
        .header("content-type", "application/json")
        .body(event.to_string())
        .send()
        .await?;
    let status = response.status();
    let body: Value = serde_json::from_slice(&response.bytes().await?).unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(format!("run-step answered {status}: {body}").into());
    }
    Ok(body["batchItemFailures"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|failure| failure["itemIdentifier"].as_str().map(str::to_string))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_slow_down_only_after_a_quiet_second() {
        assert_eq!(poll_pause(3, 0), 10);
        assert_eq!(poll_pause(0, 1), 20);
        assert_eq!(poll_pause(0, IDLE_AFTER_POLLS - 1), 20);
        assert_eq!(poll_pause(0, IDLE_AFTER_POLLS), 100);
        // Records that the mapping's filter drops still count as traffic.
        assert_eq!(poll_pause(0, 0), 20);
    }
}
