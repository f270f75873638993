//! A definition's graph ([`saga_core::definition::graph`]) rendered as Mermaid ([`mermaid`])
//! or Graphviz ([`dot`]).

pub mod dot;
pub mod mermaid;

pub use saga_core::definition::graph::{EdgeStyle, Graph, Node, NodeKind};

#[cfg(test)]
mod tests;
