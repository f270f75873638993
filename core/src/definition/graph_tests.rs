use super::Definitions;
use super::graph::fixtures::{TIMED, TRIP, graph};
use super::graph::{EdgeStyle, Graph, Node, NodeKind};

const PIPELINE: &str = r#"{"type": "pipe", "mode": "choreography", "event_topics": ["events"],
  "command_topic": "commands", "compensation_timeout_ms": 1000, "steps": [
  {"name": "a", "events": {"AStarted": "started", "ADone": "completed"},
   "compensation": {"command": "UndoA"}},
  {"name": "b", "events": {"BDone": "completed", "BFailed": "failed"},
   "compensation": {"command": "UndoB"}},
  {"name": "c", "events": {"CDone": "completed"}}]}"#;

fn edges(graph: &Graph, style: EdgeStyle) -> Vec<(&str, &str)> {
    let mut edges: Vec<_> = graph
        .edges
        .iter()
        .filter(|e| e.style == style)
        .map(|e| (e.from.as_str(), e.to.as_str()))
        .collect();
    edges.sort();
    edges
}

fn node<'a>(graph: &'a Graph, id: &str) -> &'a Node {
    graph.nodes.iter().find(|n| n.id == id).unwrap()
}

#[test]
fn steps_run_in_sequence_and_groups_fork_and_join() {
    let g = graph(TRIP);
    let ids: Vec<&str> = g.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "start", "s0", "c0", "fork1", "s1", "c1", "s2", "c2", "s3", "join1", "s4", "s5", "done"
        ]
    );
    assert_eq!(
        edges(&g, EdgeStyle::Forward),
        [
            ("fork1", "s1"),
            ("fork1", "s2"),
            ("join1", "s4"),
            ("s0", "fork1"),
            ("s1", "join1"),
            ("s2", "s3"),
            ("s3", "join1"),
            ("s4", "s5"),
            ("s5", "done"),
            ("start", "s0"),
        ]
    );
    assert_eq!(
        (node(&g, "fork1").kind, node(&g, "join1").label.as_str()),
        (NodeKind::Fork, "book")
    );
}

#[test]
fn kinds_and_for_each_are_marked() {
    let g = graph(TRIP);
    assert_eq!(node(&g, "s4").step_kind.as_deref(), Some("pivot"));
    assert_eq!(node(&g, "s4").details, ["http PUT", "pivot"]);
    assert_eq!(node(&g, "s5").step_kind.as_deref(), Some("retriable"));
    assert_eq!(node(&g, "s3").for_each.as_deref(), Some("${/input/rooms}"));
    assert_eq!(
        node(&g, "s3").details,
        [
            "http POST",
            "for each ${/input/rooms} (2 at once, at most 5)"
        ]
    );
    assert_eq!(node(&g, "c2").lines(), ["↩ hotel", "publish"]);
}

#[test]
fn compensations_undo_their_step_and_run_newest_first() {
    let g = graph(TRIP);
    assert_eq!(
        edges(&g, EdgeStyle::Undo),
        [("s0", "c0"), ("s1", "c1"), ("s2", "c2")]
    );
    // Both branches' compensations come before the hold's.
    assert_eq!(
        edges(&g, EdgeStyle::Compensation),
        [("c1", "c0"), ("c2", "c0")]
    );
}

#[test]
fn a_choreography_is_its_steps_with_their_commands() {
    let g = graph(PIPELINE);
    assert_eq!(g.mode, "choreography");
    assert_eq!(
        edges(&g, EdgeStyle::Forward),
        [("s0", "s1"), ("s1", "s2"), ("s2", "done"), ("start", "s0")]
    );
    assert_eq!(edges(&g, EdgeStyle::Compensation), [("c1", "c0")]);
    assert_eq!(node(&g, "c1").details, ["command UndoB"]);
    assert_eq!(node(&g, "s0").details, ["events: ADone, AStarted"]);
}

#[test]
fn waits_conditions_and_awaits_are_marked() {
    let g = graph(TIMED);
    assert_eq!(node(&g, "s0").wait.as_deref(), Some("1.5 s"));
    assert_eq!(node(&g, "s1").details, ["wait until ${/input/not_before}"]);
    assert_eq!(node(&g, "s2").when.as_deref(), Some("/input/vip = true"));
    assert_eq!(
        node(&g, "s3").details,
        ["publish", "when /input/coupon exists"]
    );
    let awaited = r#"{"type": "pay", "steps": [
      {"name": "charge", "action": {"http": {"url": "http://x/c"}}, "await": {"timeout_ms": 30000}},
      {"name": "ship", "action": {"publish": {"topic": "ship"}},
       "await": {"timeout_ms": 90000, "reply_topic": "shipped"}}]}"#;
    let env = |name: &str| (name == "SAGA_API_URL").then(|| "http://api.example".to_string());
    let definitions = Definitions::from_files([("t.json", awaited)], env).unwrap();
    let g = Graph::of(&definitions.current("pay").unwrap());
    assert_eq!(
        node(&g, "s0").awaits.as_deref(),
        Some("callback within 30.0 s")
    );
    assert_eq!(
        node(&g, "s1").details,
        ["publish", "await reply on shipped within 1 min 30 s"]
    );
}

#[test]
fn the_graph_serialises_with_its_kinds_and_styles() {
    let json = serde_json::to_value(graph(TRIP)).unwrap();
    assert_eq!(json["type"], "trip");
    assert_eq!(json["nodes"][1]["kind"], "step");
    assert_eq!(json["nodes"][2]["kind"], "compensation");
    assert_eq!(json["edges"][0]["style"], "forward");
    assert!(json["nodes"][1].get("await").is_none());
}

#[test]
fn a_graph_reads_back_as_it_was_written() {
    let defs = Definitions::from_files(
        [(
            "image.json",
            include_str!("../../../definitions/image.json"),
        )],
        |_| Some("http://p/".into()),
    )
    .unwrap();
    let graph = Graph::of(&defs.current("image").unwrap());
    let text = serde_json::to_string(&graph).unwrap();
    assert_eq!(serde_json::from_str::<Graph>(&text).unwrap(), graph);
}
