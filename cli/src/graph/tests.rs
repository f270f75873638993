use super::{Graph, dot, mermaid};
use saga_core::definition::Definitions;
use saga_core::definition::graph::fixtures::{TIMED, TRIP, graph};

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
fn waits_and_conditions_are_drawn() {
    let g = graph(TIMED);
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
