//! A definition as a graph: its steps in sequence, parallel groups as fork and join, for-each
//! steps and kinds marked, and each compensation beside the step it undoes, linked newest first
//! by dashed edges that run against the flow. The CLI renders it as Mermaid or Graphviz, the
//! API serves it as JSON (`GET /definitions/{type}`) and the dashboard draws it.

use super::choreography::Choreography;
use super::{AnyDefinition, Await, CallSpec, Condition, SagaDefinition, Stage, StepKind, Wait};
use serde::{Deserialize, Serialize};

/// The graph of one definition.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Graph {
    /// The saga type.
    #[serde(rename = "type")]
    pub saga_type: String,
    /// `orchestration` or `choreography`.
    pub mode: String,
    /// The nodes, in the order drawn.
    pub nodes: Vec<Node>,
    /// The edges.
    pub edges: Vec<Edge>,
}

/// A node: the start, the end, a step, a fork or join of a parallel group, or a compensation.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Node {
    /// Unique in the graph, safe as a Mermaid or dot identifier: `start`, `done` (the end;
    /// Mermaid reserves `end`), `s<i>` and `c<i>` for step `i`'s action and compensation
    /// (steps numbered as written, groups' branches flattened), `fork<n>` and `join<n>` for
    /// the group that is stage `n`.
    pub id: String,
    /// What it is.
    pub kind: NodeKind,
    /// The step's or group's name (or `start`, `end`).
    pub label: String,
    /// A step's kind: `compensatable`, `pivot` or `retriable`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_kind: Option<String>,
    /// A for-each step: the array it runs over.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub for_each: Option<String>,
    /// A wait step: how long, or until when (`30 s`, `until ${/input/not_before}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wait: Option<String>,
    /// A step with a condition: when it runs (`/input/vip = true`); otherwise it is skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// An awaited action: how its answer arrives (`callback`, `reply on TOPIC`).
    #[serde(rename = "await", skip_serializing_if = "Option::is_none")]
    pub awaits: Option<String>,
    /// More lines for people: the call (`http POST`, `publish`), the for-each's bounds, the
    /// events a choreographed step listens to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

/// What a node stands for.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// Where the saga begins.
    Start,
    /// Where it ends going forward.
    End,
    /// A step's action.
    Step,
    /// A parallel group's branches begin.
    Fork,
    /// A parallel group's branches are all done.
    Join,
    /// A step's compensation.
    Compensation,
}

/// An edge.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Edge {
    /// The node it leaves.
    pub from: String,
    /// The node it reaches.
    pub to: String,
    /// How it is drawn.
    pub style: EdgeStyle,
}

/// What an edge means.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EdgeStyle {
    /// The saga goes forward.
    Forward,
    /// From a step to the compensation that undoes it (dashed).
    Undo,
    /// From a compensation to the one that runs after it, newest step first (dashed,
    /// against the flow).
    Compensation,
}

impl Graph {
    /// The graph of a definition of either kind.
    pub fn of(definition: &AnyDefinition) -> Self {
        match definition {
            AnyDefinition::Orchestrated(d) => Self::orchestrated(d),
            AnyDefinition::Choreographed(c) => Self::choreographed(c),
        }
    }

    fn orchestrated(definition: &SagaDefinition) -> Self {
        let mut graph = Self::new(&definition.saga_type, "orchestration");
        let mut previous = vec!["start".to_string()];
        // Per stage, per branch: the compensation nodes in the order the branch's steps run.
        let mut compensations: Vec<Vec<Vec<String>>> = Vec::new();
        for (at, stage) in definition.stages.iter().enumerate() {
            let branches: Vec<Vec<usize>> = match stage {
                Stage::Step(i) => vec![vec![*i]],
                Stage::Parallel { branches, .. } => branches.clone(),
            };
            let (entry, exit) = match stage {
                Stage::Step(i) => (format!("s{i}"), format!("s{i}")),
                Stage::Parallel { name, .. } => {
                    graph.node(format!("fork{at}"), NodeKind::Fork, name);
                    (format!("fork{at}"), format!("join{at}"))
                }
            };
            graph.forward_from(&previous, &entry);
            let mut stage_compensations = Vec::new();
            for branch in &branches {
                let mut last = entry.clone();
                let mut undone = Vec::new();
                for &i in branch {
                    let id = format!("s{i}");
                    graph.step(definition, i);
                    if last != id {
                        graph.edge(&last, &id, EdgeStyle::Forward);
                    }
                    if let Some(compensation) = &definition.steps[i].compensation {
                        let node = format!("c{i}");
                        graph.node(
                            node.clone(),
                            NodeKind::Compensation,
                            &definition.steps[i].name,
                        );
                        graph.last().details.push(call_text(compensation));
                        graph.edge(&id, &node, EdgeStyle::Undo);
                        undone.push(node);
                    }
                    last = id;
                }
                if last != exit {
                    graph.edge(&last, &exit, EdgeStyle::Forward);
                }
                stage_compensations.push(undone);
            }
            if let Stage::Parallel { name, .. } = stage {
                graph.node(exit.clone(), NodeKind::Join, name);
            }
            compensations.push(stage_compensations);
            previous = vec![exit];
        }
        graph.forward_from(&previous, "done");
        graph.node("done".into(), NodeKind::End, "end");
        graph.chain_compensations(&compensations);
        graph
    }

    fn choreographed(choreography: &Choreography) -> Self {
        let mut graph = Self::new(&choreography.saga_type, "choreography");
        let mut previous = "start".to_string();
        let mut compensations = Vec::new();
        for (i, step) in choreography.steps.iter().enumerate() {
            let id = format!("s{i}");
            graph.node(id.clone(), NodeKind::Step, &step.name);
            let events: Vec<&str> = step.events.keys().map(String::as_str).collect();
            graph
                .last()
                .details
                .push(format!("events: {}", events.join(", ")));
            graph.edge(&previous, &id, EdgeStyle::Forward);
            let mut undone = Vec::new();
            if let Some(command) = &step.compensation {
                let node = format!("c{i}");
                graph.node(node.clone(), NodeKind::Compensation, &step.name);
                graph
                    .last()
                    .details
                    .push(format!("command {}", command.command));
                graph.edge(&id, &node, EdgeStyle::Undo);
                undone.push(node);
            }
            compensations.push(vec![undone]);
            previous = id;
        }
        graph.edge(&previous, "done", EdgeStyle::Forward);
        graph.node("done".into(), NodeKind::End, "end");
        graph.chain_compensations(&compensations);
        graph
    }

    fn new(saga_type: &str, mode: &'static str) -> Self {
        let mut graph = Self {
            saga_type: saga_type.to_string(),
            mode: mode.to_string(),
            nodes: Vec::new(),
            edges: Vec::new(),
        };
        graph.node("start".into(), NodeKind::Start, "start");
        graph
    }

    fn node(&mut self, id: String, kind: NodeKind, label: &str) {
        self.nodes.push(Node {
            id,
            kind,
            label: label.to_string(),
            step_kind: None,
            for_each: None,
            wait: None,
            when: None,
            awaits: None,
            details: Vec::new(),
        });
    }

    fn last(&mut self) -> &mut Node {
        self.nodes.last_mut().expect("a node was just added")
    }

    fn step(&mut self, definition: &SagaDefinition, i: usize) {
        let step = &definition.steps[i];
        self.node(format!("s{i}"), NodeKind::Step, &step.name);
        let node = self.last();
        node.step_kind = Some(
            match step.kind {
                StepKind::Compensatable => "compensatable",
                StepKind::Pivot => "pivot",
                StepKind::Retriable => "retriable",
            }
            .to_string(),
        );
        node.details.extend(step.action.as_ref().map(call_text));
        node.wait = step.wait.as_ref().map(wait_text);
        node.when = step.when.as_ref().map(condition_text);
        node.awaits = step.await_answer.as_ref().map(await_text);
        node.details
            .extend(node.awaits.iter().map(|a| format!("await {a}")));
        node.details
            .extend(node.wait.iter().map(|w| format!("wait {w}")));
        node.details
            .extend(node.when.iter().map(|w| format!("when {w}")));
        if step.kind != StepKind::Compensatable {
            node.details
                .push(node.step_kind.clone().unwrap_or_default());
        }
        if let Some(each) = &step.for_each {
            node.for_each = Some(each.items.clone());
            node.details.push(format!(
                "for each {} ({} at once, at most {})",
                each.items, each.max_concurrency, each.max_items
            ));
        }
    }

    fn edge(&mut self, from: &str, to: &str, style: EdgeStyle) {
        self.edges.push(Edge {
            from: from.to_string(),
            to: to.to_string(),
            style,
        });
    }

    fn forward_from(&mut self, previous: &[String], to: &str) {
        for from in previous {
            self.edge(from, to, EdgeStyle::Forward);
        }
    }

    /// Links the compensations newest first: within a branch from its later steps to its
    /// earlier ones, and from every branch's oldest compensation of a stage to the newest of
    /// each branch of the nearest earlier stage that has any.
    fn chain_compensations(&mut self, stages: &[Vec<Vec<String>>]) {
        let mut later: Vec<String> = Vec::new();
        for stage in stages.iter().rev() {
            let branches: Vec<&Vec<String>> = stage.iter().filter(|b| !b.is_empty()).collect();
            if branches.is_empty() {
                continue;
            }
            let newest: Vec<String> = branches.iter().filter_map(|b| b.last().cloned()).collect();
            for from in &later {
                for to in &newest {
                    self.edge(from, to, EdgeStyle::Compensation);
                }
            }
            for branch in &branches {
                for pair in branch.windows(2).rev() {
                    self.edge(&pair[1], &pair[0], EdgeStyle::Compensation);
                }
            }
            later = branches.iter().filter_map(|b| b.first().cloned()).collect();
        }
    }
}

impl Node {
    /// Its label for people, one line each: its name (a compensation's with ↩, a fork's and
    /// join's with what they are), then its details.
    pub fn lines(&self) -> Vec<String> {
        let name = match self.kind {
            NodeKind::Compensation => format!("↩ {}", self.label),
            NodeKind::Fork => format!("parallel {}", self.label),
            NodeKind::Join => format!("join {}", self.label),
            _ => self.label.clone(),
        };
        std::iter::once(name)
            .chain(self.details.iter().cloned())
            .collect()
    }
}

/// A duration for people: `350 ms`, `1.5 s`, `2 min 05 s`.
pub fn duration_text(ms: i64) -> String {
    match ms {
        ms if ms < 1_000 => format!("{ms} ms"),
        ms if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        ms => format!("{} min {:02} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// An await for people: `callback within 30.0 s`, `reply on TOPIC within 1 min 00 s`.
fn await_text(answer: &Await) -> String {
    let within = duration_text(answer.timeout_ms as i64);
    match &answer.reply_topic {
        Some(topic) => format!("reply on {topic} within {within}"),
        None => format!("callback within {within}"),
    }
}

/// A wait for people: `1.5 s` or `until ${/input/not_before}`.
fn wait_text(wait: &Wait) -> String {
    match (wait.ms, &wait.until) {
        (Some(ms), _) => duration_text(ms as i64),
        (None, Some(until)) => format!("until {until}"),
        (None, None) => String::new(),
    }
}

/// A condition for people: `/input/vip = true`, `/input/coupon exists`, `/input/tier in
/// ["gold","silver"]`.
fn condition_text(condition: &Condition) -> String {
    let pointer = &condition.pointer;
    match (&condition.equals, condition.exists, &condition.one_of) {
        (Some(value), _, _) => format!("{pointer} = {value}"),
        (None, Some(true), _) => format!("{pointer} exists"),
        (None, Some(false), _) => format!("{pointer} is missing"),
        (None, None, Some(values)) => format!("{pointer} in {}", serde_json::json!(values)),
        (None, None, None) => pointer.clone(),
    }
}

/// A call for people: `http POST`, `publish`.
fn call_text(call: &CallSpec) -> String {
    match call {
        CallSpec::Http(http) => format!("http {}", http.method.to_ascii_uppercase()),
        CallSpec::Publish(_) => "publish".to_string(),
    }
}

/// Definitions whose graphs the tests (here and in the CLI's renderers) look at.
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures {
    use super::{super::Definitions, Graph};

    /// A hold, then a group (a flight; a hotel then a for-each over rooms), then the pivot and
    /// a retriable step after it.
    pub const TRIP: &str = r#"{"type": "trip", "steps": [
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

    /// Two waits and two steps with conditions.
    pub const TIMED: &str = r#"{"type": "timed", "steps": [
      {"name": "hold", "wait": {"ms": 1500}},
      {"name": "later", "wait": {"until": "${/input/not_before}"}},
      {"name": "gift", "when": {"pointer": "/input/vip", "equals": true},
       "action": {"publish": {"topic": "gifts"}}},
      {"name": "coupon", "when": {"pointer": "/input/coupon", "exists": true},
       "action": {"publish": {"topic": "coupons"}}}]}"#;

    /// The graph of a definition text (of one type, without `${env:...}`).
    pub fn graph(text: &str) -> Graph {
        let definitions = Definitions::from_files([("t.json", text)], |_| None).unwrap();
        Graph::of(&definitions.current(definitions.types()[0]).unwrap())
    }
}
