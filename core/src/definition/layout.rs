//! A definition's layout: its `steps` as written (a step, or a parallel group of branches, each
//! a sequence of steps), and the flat list of steps that records, calls and keys index, each
//! placed in the stage it runs in. Stages run one after another; the branches of a group run
//! side by side; a for-each step runs its action once per element of an array.

use super::{SagaDefinition, StepDefinition};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Most elements a for-each step may declare in `max_items` (keeps the record well under
/// DynamoDB's item limit: each element keeps its own call state).
pub const MAX_ITEMS: u32 = 100;

/// One entry of a definition's `steps`: a step, or a group of branches run side by side.
#[derive(Clone, Debug, PartialEq)]
pub enum StepEntry {
    /// A step.
    Step(Box<StepDefinition>),
    /// A parallel group.
    Parallel(ParallelGroup),
}

/// `{"name": ..., "parallel": {"branches": [[steps], [steps]]}}`: all branches start together,
/// and the group completes when every branch has.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ParallelGroup {
    /// Unique among the definition's step and group names; `${/steps/<name>/output}` is the
    /// object of its branches' last outputs, keyed by those steps' names.
    pub name: String,
    /// The branches.
    pub parallel: Branches,
}

/// The branches of a parallel group.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Branches {
    /// Each branch is a sequence of steps (no nested groups; a step may be a for-each).
    pub branches: Vec<Vec<StepDefinition>>,
}

/// `"for_each"` on a step: its action (and compensation) run once per element of an array.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ForEach {
    /// A reference to the array, such as `"${/input/influencers}"`; optional with a trailing
    /// `?` (`"${/input/influencers?}"`: a missing array is an empty one).
    pub items: String,
    /// Most elements whose calls run at once.
    pub max_concurrency: u32,
    /// Most elements the array may hold (1 to [`MAX_ITEMS`]); a start whose input array is
    /// longer is refused, and a step whose array (from an earlier output) is longer fails.
    pub max_items: u32,
    /// Elements that may fail for good without failing the step; their output is `null`, and
    /// they are compensated as a failed step is if the saga is later compensated.
    #[serde(default)]
    pub tolerated_failures: u32,
}

impl ForEach {
    /// The JSON pointer the `items` reference names, without `${`, `}` and an optional `?`.
    pub fn pointer(&self) -> Option<&str> {
        let reference = self.items.strip_prefix("${")?.strip_suffix('}')?;
        Some(reference.strip_suffix('?').unwrap_or(reference))
    }

    /// Whether the reference is optional (`${/input/list?}`): a missing array, or `null`, is
    /// then an empty one.
    pub fn optional(&self) -> bool {
        self.items.ends_with("?}")
    }
}

/// A stage of a saga; stages run one after another.
#[derive(Clone, Debug, PartialEq)]
pub enum Stage {
    /// One step (possibly a for-each), by its index in the flat list.
    Step(usize),
    /// A parallel group: its name and, per branch, the indexes of its steps in order.
    Parallel {
        /// The group's name.
        name: String,
        /// Per branch, its steps' indexes.
        branches: Vec<Vec<usize>>,
    },
}

impl Stage {
    /// The steps of the stage, by index.
    pub fn steps(&self) -> Vec<usize> {
        match self {
            Stage::Step(i) => vec![*i],
            Stage::Parallel { branches, .. } => branches.iter().flatten().copied().collect(),
        }
    }
}

/// Flattens entries into the steps in the order written and their stages.
pub fn flatten(entries: Vec<StepEntry>) -> (Vec<StepDefinition>, Vec<Stage>) {
    let mut steps = Vec::new();
    let mut stages = Vec::new();
    for entry in entries {
        match entry {
            StepEntry::Step(step) => {
                stages.push(Stage::Step(steps.len()));
                steps.push(*step);
            }
            StepEntry::Parallel(group) => {
                let mut branches = Vec::new();
                for branch in group.parallel.branches {
                    let first = steps.len();
                    steps.extend(branch);
                    branches.push((first..steps.len()).collect());
                }
                stages.push(Stage::Parallel {
                    name: group.name,
                    branches,
                });
            }
        }
    }
    (steps, stages)
}

impl SagaDefinition {
    /// Flattens the layout as written into `steps` and `stages`.
    pub fn index(&mut self) {
        let (steps, stages) = flatten(std::mem::take(&mut self.layout));
        self.steps = steps;
        self.stages = stages;
    }

    /// The stage a step runs in, by index into `stages`.
    pub fn stage_of(&self, step: usize) -> usize {
        self.stages
            .iter()
            .position(|stage| stage.steps().contains(&step))
            .expect("every step is in a stage")
    }

    /// Where a step is written in the file, as a field path (`steps[2]`, or
    /// `steps[2].parallel.branches[1][0]` inside a group).
    pub fn step_field(&self, step: usize) -> String {
        let at = self.stage_of(step);
        match &self.stages[at] {
            Stage::Step(_) => format!("steps[{at}]"),
            Stage::Parallel { branches, .. } => {
                let (b, i) = branches
                    .iter()
                    .enumerate()
                    .find_map(|(b, steps)| Some((b, steps.iter().position(|&s| s == step)?)))
                    .expect("the step is in its stage");
                format!("steps[{at}].parallel.branches[{b}][{i}]")
            }
        }
    }

    /// The topic of its sagas' lifecycle notifications, if it names one.
    pub fn notify_topic(&self) -> Option<&str> {
        self.notifications.as_ref().map(|n| n.topic.as_str())
    }

    /// Checks a start's input against what the definition reads from it before anything
    /// runs: each for-each over an array of the input needs that array, within `max_items`.
    /// The error names the field.
    pub fn check_input(&self, input: &Value) -> Result<(), String> {
        for step in &self.steps {
            let Some(each) = &step.for_each else {
                continue;
            };
            let Some(field) = each.pointer().and_then(|p| p.strip_prefix("/input")) else {
                continue;
            };
            let shown = if field.is_empty() { "the input" } else { field };
            match input.pointer(field) {
                Some(Value::Array(items)) if items.len() <= each.max_items as usize => {}
                None | Some(Value::Null) if each.optional() => {}
                Some(Value::Array(items)) => {
                    return Err(format!(
                        "{shown}: {} elements, over the {} that step {} takes (max_items)",
                        items.len(),
                        each.max_items,
                        step.name
                    ));
                }
                _ => {
                    return Err(format!(
                        "{shown}: must be an array (step {} runs once per element)",
                        step.name
                    ));
                }
            }
        }
        Ok(())
    }
}

/// One stage per step: the layout of a definition without groups.
pub fn sequential(steps: usize) -> Vec<Stage> {
    (0..steps).map(Stage::Step).collect()
}

impl<'de> Deserialize<'de> for StepEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let group = value.get("parallel").is_some();
        // Parsed with the path inside the entry kept, so an error names the field at fault.
        let parsed = if group {
            serde_path_to_error::deserialize(value).map(StepEntry::Parallel)
        } else {
            serde_path_to_error::deserialize(value).map(|s| StepEntry::Step(Box::new(s)))
        };
        parsed.map_err(|e| {
            let path = e.path().to_string();
            let message = e.into_inner();
            if path == "." {
                serde::de::Error::custom(message)
            } else {
                serde::de::Error::custom(format!("{WITHIN}{path}{WITHIN}{message}"))
            }
        })
    }
}

/// Marks the path inside a step entry in its error message (see [`locate`]).
const WITHIN: char = '\u{1f}';

/// The field at fault and what is wrong, from the path of an entry of `steps` and its error
/// message: the path inside the entry is moved from the message to the field.
pub fn locate(path: String, message: String) -> (String, String) {
    let mut parts = message.splitn(3, WITHIN);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(""), Some(inner), Some(rest)) => (format!("{path}.{inner}"), rest.to_string()),
        _ => (path, message),
    }
}
