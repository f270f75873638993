//! A [`Graph`] in Graphviz's dot language (wait steps as `invhouse`, steps with a condition
//! dotted): the steps top to bottom, each compensation on the
//! rank of the step it undoes, and the compensations' order as dashed edges running upwards.

use super::{EdgeStyle, Graph, Node, NodeKind};

/// The dot text of a graph.
pub fn render(graph: &Graph) -> String {
    let mut out = format!(
        "digraph {} {{\n    label={};\n    labelloc=t;\n    node [shape=box, style=rounded];\n",
        quote(&graph.saga_type),
        quote(&graph.saga_type)
    );
    for node in &graph.nodes {
        let attributes = match node.kind {
            NodeKind::Start | NodeKind::End => "shape=oval",
            NodeKind::Fork | NodeKind::Join => "shape=circle",
            NodeKind::Compensation => "style=\"rounded,dashed\", color=\"#7b3fc4\"",
            NodeKind::Step if node.step_kind.as_deref() == Some("pivot") => {
                "shape=hexagon, style=bold"
            }
            NodeKind::Step if node.for_each.is_some() => "peripheries=2",
            NodeKind::Step if node.wait.is_some() => "shape=invhouse",
            NodeKind::Step => "",
        };
        let conditional = node.when.is_some() && !attributes.contains("style");
        let attributes = match conditional {
            true => format!(
                "{attributes}{}style=\"rounded,dotted\"",
                if attributes.is_empty() { "" } else { ", " }
            ),
            false => attributes.to_string(),
        };
        let separator = if attributes.is_empty() { "" } else { ", " };
        out.push_str(&format!(
            "    {} [label={}{separator}{attributes}];\n",
            node.id,
            quote(&label(node))
        ));
    }
    for edge in &graph.edges {
        let attributes = match edge.style {
            EdgeStyle::Forward => "",
            EdgeStyle::Undo => " [style=dashed, label=\"undo\", color=\"#7b3fc4\"]",
            EdgeStyle::Compensation => " [style=dashed, color=\"#7b3fc4\", constraint=false]",
        };
        out.push_str(&format!("    {} -> {}{attributes};\n", edge.from, edge.to));
    }
    for edge in graph.edges.iter().filter(|e| e.style == EdgeStyle::Undo) {
        out.push_str(&format!(
            "    {{ rank=same; {}; {}; }}\n",
            edge.from, edge.to
        ));
    }
    out.push_str("}\n");
    out
}

/// A node's label, its lines joined.
fn label(node: &Node) -> String {
    node.lines().join("\n")
}

/// A dot string: quoted, with backslashes, quotes and line breaks escaped.
fn quote(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("\"{escaped}\"")
}
