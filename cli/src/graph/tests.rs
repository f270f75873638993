use super::*;
use saga_core::definition::Definitions;

/// A hold, then a group (a flight; a hotel then a for-each over rooms), then the pivot and a
/// retriable step after it.
const TRIP: &str = r#"{"type": "trip", "steps": [
  {"name": "hold", "action": {"http": {"url": "http://x/hold"}},
   "compensation": {"http": {"url": "http://x/release"}}},
  {"name": "book", "parallel": {"branches": [
    [{"name": "flight", "action": {"http": {"url": "http://x/f"}},
      "compensation": {"http": {"url": "http://x/f", "method": "DELETE"}}}],
    [{"name": "hotel", "action": {"publish": {"topic": "hotels"}},
      "compensation": {"publish": {"topic": "hotels-undo"}}},
     {"name": "rooms", "for_each": {"items": "${/input/rooms}", "max_concurrency": 2, "max_items": 5},
      "action": {"http": {"url": "http://x/r"}}}]]}},
  {"name": "charge", "kind": "pivot", "action": {"http": {"url": "http://x/c", "method": "put"}}},
  {"name": "notify", "kind": "retriable", "action": {"http": {"url": "http://x/n"}}}]}"#;

const PIPELINE: &str = r#"{"type": "pipe", "mode": "choreography", "event_topics": ["events"],
  "command_topic": "commands", "compensation_timeout_ms": 1000, "steps": [
  {"name": "a", "events": {"AStarted": "started", "ADone": "completed"},
   "compensation": {"command": "UndoA"}},
  {"name": "b", "events": {"BDone": "completed", "BFailed": "failed"},
   "compensation": {"command": "UndoB"}},
  {"name": "c", "events": {"CDone": "completed"}}]}"#;

fn graph(text: &str) -> Graph {
    let definitions = Definitions::from_files([("t.json", text)], |_| None).unwrap();
    Graph::of(&definitions.current(definitions.types()[0]).unwrap())
}

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
    assert_eq!(node(&g, "s4").step_kind, Some("pivot"));
    assert_eq!(node(&g, "s4").details, ["http PUT", "pivot"]);
    assert_eq!(node(&g, "s5").step_kind, Some("retriable"));
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
fn mermaid_draws_every_node_and_edge() {
    let text = mermaid::render(&graph(TRIP));
    for line in [
        "flowchart TD",
        "    s0[\"hold<br/>http POST\"]",
        "    c0[/\"↩ hold<br/>http POST\"/]",
        "    fork1((\"parallel book\"))",
        "    s3[[\"rooms<br/>http POST<br/>for each ${/input/rooms} (2 at once, at most 5)\"]]",
        "    s4{{\"charge<br/>http PUT<br/>pivot\"}}",
        "    s0 --> fork1",
        "    s0 -. undo .-> c0",
        "    c2 -.-> c0",
        "    class c0,c1,c2 compensation",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
    }
}

#[test]
fn dot_draws_every_node_and_edge() {
    let text = dot::render(&graph(TRIP));
    for line in [
        "digraph \"trip\" {",
        "    s4 [label=\"charge\\nhttp PUT\\npivot\", shape=hexagon, style=bold];",
        "    s3 [label=\"rooms\\nhttp POST\\nfor each ${/input/rooms} (2 at once, at most 5)\", peripheries=2];",
        "    join1 [label=\"join book\", shape=circle];",
        "    start -> s0;",
        "    s2 -> c2 [style=dashed, label=\"undo\", color=\"#7b3fc4\"];",
        "    c1 -> c0 [style=dashed, color=\"#7b3fc4\", constraint=false];",
        "    { rank=same; s0; c0; }",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
    }
}

#[test]
fn labels_are_escaped() {
    let text =
        r#"{"type": "q\"t", "steps": [{"name": "a<b>", "action": {"publish": {"topic": "t"}}}]}"#;
    let definitions = Definitions::from_files([("t.json", text)], |_| None);
    // Either the loader refuses such names, or the renderers escape them.
    if let Ok(definitions) = definitions {
        let g = Graph::of(&definitions.current(definitions.types()[0]).unwrap());
        assert!(mermaid::render(&g).contains("a#lt;b#gt;"));
        assert!(dot::render(&g).contains("digraph \"q\\\"t\""));
    }
}

#[test]
fn waits_and_conditions_are_marked() {
    let text = r#"{"type": "timed", "steps": [
      {"name": "hold", "wait": {"ms": 1500}},
      {"name": "later", "wait": {"until": "${/input/not_before}"}},
      {"name": "gift", "when": {"pointer": "/input/vip", "equals": true},
       "action": {"publish": {"topic": "gifts"}}},
      {"name": "coupon", "when": {"pointer": "/input/coupon", "exists": true},
       "action": {"publish": {"topic": "coupons"}}}]}"#;
    let g = graph(text);
    assert_eq!(node(&g, "s0").wait.as_deref(), Some("1.5 s"));
    assert_eq!(node(&g, "s1").details, ["wait until ${/input/not_before}"]);
    assert_eq!(node(&g, "s2").when.as_deref(), Some("/input/vip = true"));
    assert_eq!(
        node(&g, "s3").details,
        ["publish", "when /input/coupon exists"]
    );
    let mermaid = mermaid::render(&g);
    assert!(
        mermaid.contains("    s0>\"hold<br/>wait 1.5 s\"]\n"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("    class s2,s3 conditional\n"),
        "{mermaid}"
    );
    let dot = dot::render(&g);
    assert!(
        dot.contains(
            "    s1 [label=\"later\\nwait until ${/input/not_before}\", shape=invhouse];\n"
        ),
        "{dot}"
    );
    assert!(dot.contains("    s2 [label=\"gift\\npublish\\nwhen /input/vip = true\", style=\"rounded,dotted\"];\n"), "{dot}");
}
