//! A [`Graph`] as a Mermaid flowchart (top to bottom): steps as boxes, the pivot a hexagon,
//! for-each steps as subroutines, wait steps as flags, steps with a condition dashed, forks and
//! joins as circles, compensations as violet parallelograms reached by dashed edges.

use super::{EdgeStyle, Graph, Node, NodeKind};

/// The Mermaid text of a graph.
pub fn render(graph: &Graph) -> String {
    let mut out = format!(
        "---\ntitle: {}\n---\nflowchart TD\n",
        escape(&graph.saga_type)
    );
    for node in &graph.nodes {
        let label = label(node);
        let shape = match node.kind {
            NodeKind::Start | NodeKind::End => format!("([\"{label}\"])"),
            NodeKind::Fork | NodeKind::Join => format!("((\"{label}\"))"),
            NodeKind::Compensation => format!("[/\"{label}\"/]"),
            NodeKind::Step if node.step_kind.as_deref() == Some("pivot") => {
                format!("{{{{\"{label}\"}}}}")
            }
            NodeKind::Step if node.for_each.is_some() => format!("[[\"{label}\"]]"),
            NodeKind::Step if node.wait.is_some() => format!(">\"{label}\"]"),
            NodeKind::Step => format!("[\"{label}\"]"),
        };
        out.push_str(&format!("    {}{shape}\n", node.id));
    }
    for edge in &graph.edges {
        let arrow = match edge.style {
            EdgeStyle::Forward => "-->",
            EdgeStyle::Undo => "-. undo .->",
            EdgeStyle::Compensation => "-.->",
        };
        out.push_str(&format!("    {} {arrow} {}\n", edge.from, edge.to));
    }
    let classes: [Class; 2] = [
        (
            "compensation",
            "fill:#efe4fb,stroke:#7b3fc4,color:#3d1f66",
            |n| n.kind == NodeKind::Compensation,
        ),
        ("conditional", "stroke-dasharray:4 3", |n| n.when.is_some()),
    ];
    for (class, style, member) in classes {
        let ids: Vec<&str> = graph
            .nodes
            .iter()
            .filter(|n| member(n))
            .map(|n| n.id.as_str())
            .collect();
        if !ids.is_empty() {
            out.push_str(&format!("    classDef {class} {style}\n"));
            out.push_str(&format!("    class {} {class}\n", ids.join(",")));
        }
    }
    out
}

/// A Mermaid class: its name, its style, and which nodes it is given to.
type Class = (&'static str, &'static str, fn(&Node) -> bool);

/// A node's label, its lines joined.
fn label(node: &Node) -> String {
    node.lines()
        .iter()
        .map(|line| escape(line))
        .collect::<Vec<_>>()
        .join("<br/>")
}

/// Text safe inside a quoted Mermaid label: quotes and angle brackets as entity codes.
fn escape(text: &str) -> String {
    text.replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}
