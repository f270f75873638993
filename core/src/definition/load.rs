//! Loading and validating definition files.

use super::choreography::Choreography;
use super::env::{override_timeouts, resolve_call, resolve_placeholders};
use super::error::{LoadError, error};
use super::schema_key::SkipSchemaKey;
use super::validate::validate;
use super::{SagaDefinition, version_key};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Definition files compiled into the functions: (file name, contents).
const BUNDLED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/bundled_definitions.rs"));

/// The saga types deployed together, by type name, with the text of each file (kept beside
/// the sagas so a saga runs to its end under the version it started with) and the older
/// versions read back so far.
#[derive(Clone, Default)]
pub struct Definitions {
    by_type: HashMap<String, Arc<SagaDefinition>>,
    choreographies: HashMap<String, Arc<Choreography>>,
    texts: HashMap<String, Arc<str>>,
    pinned: Arc<RwLock<HashMap<String, AnyDefinition>>>,
    env: Option<Env>,
}

/// Resolves `${env:NAME}` placeholders, for the files and for versions read back later.
type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

impl std::fmt::Debug for Definitions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Definitions")
            .field("types", &self.types())
            .finish_non_exhaustive()
    }
}

/// A definition of either kind, as one version of a saga type.
#[derive(Debug, Clone)]
pub enum AnyDefinition {
    /// Run step by step by the orchestrator.
    Orchestrated(Arc<SagaDefinition>),
    /// Driven by its participants' events.
    Choreographed(Arc<Choreography>),
}

impl AnyDefinition {
    /// The saga type.
    pub fn saga_type(&self) -> &str {
        match self {
            Self::Orchestrated(d) => &d.saga_type,
            Self::Choreographed(c) => &c.saga_type,
        }
    }

    /// The names of its steps, in order.
    pub fn step_names(&self) -> Vec<&str> {
        match self {
            Self::Orchestrated(d) => d.steps.iter().map(|s| s.name.as_str()).collect(),
            Self::Choreographed(c) => c.steps.iter().map(|s| s.name.as_str()).collect(),
        }
    }

    /// The version.
    pub fn version(&self) -> &str {
        match self {
            Self::Orchestrated(d) => &d.version,
            Self::Choreographed(c) => &c.version,
        }
    }

    /// The topic of its sagas' lifecycle notifications, if it names one.
    pub fn notify_topic(&self) -> Option<&str> {
        match self {
            Self::Orchestrated(d) => d.notify_topic(),
            Self::Choreographed(c) => c.notify_topic(),
        }
    }
}

impl Definitions {
    /// The definition files compiled into the functions: (file name, contents).
    pub fn bundled_files() -> impl Iterator<Item = (&'static str, &'static str)> {
        BUNDLED.iter().map(|(file, text)| (*file, *text))
    }

    /// Parses and validates definition files; `env` resolves `${env:NAME}` placeholders.
    pub fn from_files<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Result<Self, LoadError> {
        let mut loaded = Self::default();
        for (file, text) in files {
            let parsed = parse(file, text, &env)?;
            let saga_type = parsed.saga_type().to_string();
            if loaded.texts.contains_key(&saga_type) {
                return Err(error(file, "type", "another file defines this saga type"));
            }
            loaded.texts.insert(saga_type, Arc::from(text));
            match parsed {
                AnyDefinition::Orchestrated(d) => {
                    loaded.by_type.insert(d.saga_type.clone(), d);
                }
                AnyDefinition::Choreographed(c) => {
                    if let Some(event_type) = c
                        .event_types()
                        .find(|e| loaded.choreography_for(e).is_some())
                    {
                        return Err(error(
                            file,
                            "steps",
                            format!("event type {event_type} is mapped by another choreography"),
                        ));
                    }
                    loaded.choreographies.insert(c.saga_type.clone(), c);
                }
            }
        }
        loaded.env = Some(Arc::new(env));
        Ok(loaded)
    }

    /// Names of the saga types these definition texts declare, read without resolving or
    /// validating anything (for functions that only list sagas). Sorted; unreadable texts are
    /// left out.
    pub fn declared_types<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        #[derive(serde::Deserialize)]
        struct TypeOnly {
            #[serde(rename = "type")]
            saga_type: String,
        }
        let mut types: Vec<String> = texts
            .into_iter()
            .filter_map(|text| serde_json::from_str::<TypeOnly>(text).ok())
            .map(|t| t.saga_type)
            .collect();
        types.sort();
        types
    }

    /// Parses the text of a stored definition version as [`Self::from_files`] parsed the files,
    /// placeholders resolved the same way.
    pub fn parse_version(&self, text: &str) -> Result<AnyDefinition, LoadError> {
        let env = |name: &str| self.env.as_ref().and_then(|env| env(name));
        parse("stored definition", text, &env)
    }

    /// The deployed definition of a saga type, of either kind.
    pub fn current(&self, saga_type: &str) -> Option<AnyDefinition> {
        self.by_type
            .get(saga_type)
            .cloned()
            .map(AnyDefinition::Orchestrated)
            .or_else(|| {
                self.choreographies
                    .get(saga_type)
                    .cloned()
                    .map(AnyDefinition::Choreographed)
            })
    }

    /// The file text of a deployed saga type's definition.
    pub fn text(&self, saga_type: &str) -> Option<&str> {
        self.texts.get(saga_type).map(|t| &**t)
    }

    /// A version of a saga type: the deployed one when it is that version, else one read back
    /// and kept by [`Self::keep_version`]. `None` when neither is at hand.
    pub fn version(&self, saga_type: &str, version: &str) -> Option<AnyDefinition> {
        if let Some(current) = self.current(saga_type)
            && current.version() == version
        {
            return Some(current);
        }
        let pinned = self.pinned.read().unwrap_or_else(|e| e.into_inner());
        pinned.get(&version_key(saga_type, version)).cloned()
    }

    /// True when this version was kept by [`Self::keep_version`].
    pub fn is_kept(&self, saga_type: &str, version: &str) -> bool {
        let pinned = self.pinned.read().unwrap_or_else(|e| e.into_inner());
        pinned.contains_key(&version_key(saga_type, version))
    }

    /// Keeps a version read back from the store for the later sagas that need it (all clones of
    /// these definitions share what is kept).
    pub fn keep_version(&self, definition: AnyDefinition) {
        let key = version_key(definition.saga_type(), definition.version());
        let mut pinned = self.pinned.write().unwrap_or_else(|e| e.into_inner());
        pinned.insert(key, definition);
    }

    /// The client APIs these definition texts declare, by saga type, read without resolving
    /// or validating the rest (for functions that only read sagas); unreadable ones are left
    /// out (the functions that start sagas refuse them at load).
    pub fn declared_client_apis<'a>(
        texts: impl IntoIterator<Item = &'a str>,
    ) -> Vec<(String, super::client_api::ClientApi)> {
        #[derive(serde::Deserialize)]
        struct ApiOnly {
            #[serde(rename = "type")]
            saga_type: String,
            client_api: Option<super::client_api::ClientApi>,
        }
        texts
            .into_iter()
            .filter_map(|text| serde_json::from_str::<ApiOnly>(text).ok())
            .filter_map(|d| Some((d.saga_type, d.client_api?)))
            .filter(|(_, api)| api.validate().is_ok())
            .collect()
    }

    /// The definition and route of a client API start route this request matches.
    pub fn client_start_route(
        &self,
        method: &str,
        segments: &[&str],
    ) -> Option<(&Arc<SagaDefinition>, &super::client_api::ClientRoute)> {
        self.by_type.values().find_map(|def| {
            let route = def
                .client_api
                .as_ref()?
                .routes
                .iter()
                .find(|r| r.start && r.matches(method, segments).is_some())?;
            Some((def, route))
        })
    }

    /// The choreography of a saga type.
    pub fn choreography(&self, saga_type: &str) -> Option<&Arc<Choreography>> {
        self.choreographies.get(saga_type)
    }

    /// The choreography that maps this event type.
    pub fn choreography_for(&self, event_type: &str) -> Option<&Arc<Choreography>> {
        self.choreographies
            .values()
            .find(|c| c.classify(event_type).is_some())
    }

    /// The definition of an orchestrated saga type.
    pub fn get(&self, saga_type: &str) -> Option<&Arc<SagaDefinition>> {
        self.by_type.get(saga_type)
    }

    /// Checks that every step's attempt fits in `limit_ms`, the time an invocation has for one
    /// call (its function's timeout less the margins the worker keeps); a step that cannot fit
    /// would be cut off every time. The error names the file's type and the step.
    pub fn check_timeouts(&self, limit_ms: u64) -> Result<(), LoadError> {
        let mut types: Vec<_> = self.by_type.values().collect();
        types.sort_by(|a, b| a.saga_type.cmp(&b.saga_type));
        for def in types {
            for (i, step) in def.steps.iter().enumerate() {
                let timeout = def.timeout_ms(i);
                if timeout > limit_ms {
                    return Err(error(
                        &def.saga_type,
                        format!("steps[{i}] ({}).timeout_ms", step.name),
                        format!(
                            "{timeout} ms does not fit in the {limit_ms} ms an invocation has for \
                             one call (RUN_STEP_TIMEOUT_SECONDS less the lease and deadline \
                             margins)"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The largest answer any step of a deployed orchestrated type accepts, in bytes.
    pub fn largest_response_bytes(&self) -> usize {
        self.by_type
            .values()
            .flat_map(|def| (0..def.steps.len()).map(|i| def.max_response_bytes(i)))
            .max()
            .unwrap_or(super::DEFAULT_MAX_RESPONSE_BYTES)
    }

    /// Names of the deployed saga types (orchestrated and choreographed), sorted.
    pub fn types(&self) -> Vec<&str> {
        let mut types: Vec<&str> = self
            .by_type
            .keys()
            .chain(self.choreographies.keys())
            .map(String::as_str)
            .collect();
        types.sort();
        types
    }
}

fn parse(
    file: &str,
    text: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<AnyDefinition, LoadError> {
    /// What is read before the rest: the mode, and the `$schema` that editors read (a
    /// string, else it is refused here, as the definitions skip it).
    #[derive(serde::Deserialize)]
    struct Head {
        mode: Option<String>,
        #[serde(rename = "$schema")]
        _schema: Option<String>,
    }
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let head: Head = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "-".into() } else { path };
        error(file, field, e.into_inner().to_string())
    })?;
    deserializer
        .end()
        .map_err(|e| error(file, "-", e.to_string()))?;
    let version = super::version_of(text).unwrap_or_default();
    if head.mode.as_deref() == Some("choreography") {
        let mut choreography = parse_choreography(file, text, env)?;
        choreography.version = version;
        return Ok(AnyDefinition::Choreographed(Arc::new(choreography)));
    }
    let mut definition = parse_orchestrated(file, text, env)?;
    definition.version = version;
    Ok(AnyDefinition::Orchestrated(Arc::new(definition)))
}

fn parse_choreography(
    file: &str,
    text: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Choreography, LoadError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let mut definition: Choreography =
        serde_path_to_error::deserialize(SkipSchemaKey(&mut deserializer))
            .map_err(|e| error(file, e.path().to_string(), e.inner().to_string()))?;
    resolve_placeholders(file, "command_topic", &mut definition.command_topic, env)?;
    if let Some(notifications) = &mut definition.notifications {
        resolve_placeholders(file, "notifications.topic", &mut notifications.topic, env)?;
    }
    for (i, topic) in definition.event_topics.iter_mut().enumerate() {
        resolve_placeholders(file, &format!("event_topics[{i}]"), topic, env)?;
    }
    override_timeouts(file, &mut definition, env)?;
    definition
        .validate()
        .map_err(|(field, message)| error(file, field, message))?;
    Ok(definition)
}

fn parse_orchestrated(
    file: &str,
    text: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<SagaDefinition, LoadError> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let mut definition: SagaDefinition =
        serde_path_to_error::deserialize(SkipSchemaKey(&mut deserializer)).map_err(|e| {
            let (field, message) =
                super::layout::locate(e.path().to_string(), e.inner().to_string());
            error(file, field, message)
        })?;
    definition.index();
    if let Some(notifications) = &mut definition.notifications {
        resolve_placeholders(file, "notifications.topic", &mut notifications.topic, env)?;
    }
    for i in 0..definition.steps.len() {
        let at = definition.step_field(i);
        let step = &mut definition.steps[i];
        if let Some(action) = &mut step.action {
            resolve_call(file, &format!("{at}.action"), action, env)?;
        }
        if let Some(compensation) = &mut step.compensation {
            resolve_call(file, &format!("{at}.compensation"), compensation, env)?;
        }
    }
    validate(file, &definition)?;
    // An awaited HTTP action is answered by callback, at a URL built from the API's.
    let awaits_callback = |step: &super::StepDefinition| {
        step.await_answer.is_some() && matches!(step.action, Some(super::CallSpec::Http(_)))
    };
    if let Some(i) = definition.steps.iter().position(awaits_callback) {
        let base = env(super::CALLBACK_BASE_ENV).filter(|base| !base.is_empty());
        let Some(base) = base else {
            let message = format!(
                "{} must give the API's public URL: a callback URL is built from it",
                super::CALLBACK_BASE_ENV
            );
            return Err(error(
                file,
                format!("{}.await", definition.step_field(i)),
                message,
            ));
        };
        definition.callback_base = base.trim_end_matches('/').to_string();
    }
    Ok(definition)
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
