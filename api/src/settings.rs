//! The route checks' settings, read from the environment once, at cold start: who may call
//! which route.

use crate::auth::{AuthMode, AuthRules, Role};
use crate::routes;
use saga::cold_start::ColdStartError;
use saga::config::{Config, ConfigError, flag};
use saga::definition_files;

impl AuthRules {
    /// The HTTP functions' route checks (`AUTH_MODE`: `jwt` by default, `iam` or `none`; the
    /// scopes and principal patterns of each role; `AUTH_LOCAL_TOKENS`), with the client API
    /// routes of the deployed definitions.
    pub fn from_env() -> Result<Self, ColdStartError> {
        let config = Config::from_env()?;
        let apis = definition_files::client_apis(config.definitions_dir.as_deref());
        Ok(AuthRules {
            client_routes: routes::client_routes(&apis),
            ..from_vars(|name| std::env::var(name).ok())?
        })
    }
}

/// The route checks' settings read through `var` (the environment, or a map in tests; unset
/// and empty variables take their defaults); `iam` needs at least one principal pattern, or
/// every request would be refused.
pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<AuthRules, ConfigError> {
    let get = |name: &str| var(name).filter(|value| !value.is_empty());
    let defaults = AuthRules::default();
    let mode = match get("AUTH_MODE").as_deref().map(str::trim) {
        None | Some("jwt") => AuthMode::Jwt,
        Some("iam") => AuthMode::Iam,
        Some("none") => AuthMode::None,
        Some(other) => {
            return Err(ConfigError {
                variable: "AUTH_MODE",
                value: other.to_string(),
                expected: "jwt, iam or none".into(),
            });
        }
    };
    let roles = [
        (Role::Reader, "AUTH_READ_SCOPE", "AUTH_IAM_READERS"),
        (Role::Operator, "AUTH_OPERATE_SCOPE", "AUTH_IAM_OPERATORS"),
        (
            Role::Participant,
            "AUTH_PARTICIPATE_SCOPE",
            "AUTH_IAM_PARTICIPANTS",
        ),
    ];
    let scopes = roles
        .iter()
        .zip(defaults.scopes)
        .map(|((role, variable, _), (_, default))| (*role, get(variable).unwrap_or(default)))
        .collect();
    let principals: Vec<(Role, Vec<String>)> = roles
        .iter()
        .map(|(role, _, variable)| {
            let patterns = get(variable).unwrap_or_default();
            let patterns = patterns.split(',').map(str::trim).filter(|p| !p.is_empty());
            (*role, patterns.map(str::to_string).collect())
        })
        .collect();
    if mode == AuthMode::Iam && principals.iter().all(|(_, p)| p.is_empty()) {
        return Err(ConfigError {
            variable: "AUTH_IAM_OPERATORS",
            value: String::new(),
            expected:
                "with AUTH_MODE=iam, principal ARN patterns for the roles (AUTH_IAM_READERS, \
                       AUTH_IAM_OPERATORS, AUTH_IAM_PARTICIPANTS)"
                    .into(),
        });
    }
    Ok(AuthRules {
        mode,
        scopes,
        principals,
        local_tokens: flag(&get, "AUTH_LOCAL_TOKENS", false)?,
        client_routes: defaults.client_routes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn rules(vars: &[(&str, &str)]) -> Result<AuthRules, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn unset_variables_take_the_defaults() {
        assert_eq!(
            rules(&[("AUTH_MODE", "")]).unwrap(),
            AuthRules {
                principals: vec![
                    (Role::Reader, vec![]),
                    (Role::Operator, vec![]),
                    (Role::Participant, vec![]),
                ],
                ..AuthRules::default()
            }
        );
    }

    #[test]
    fn auth_settings_are_read() {
        let read = rules(&[
            ("AUTH_MODE", "iam"),
            (
                "AUTH_IAM_OPERATORS",
                "arn:aws:iam::1:role/ops, arn:aws:iam::1:role/admin",
            ),
            ("AUTH_PARTICIPATE_SCOPE", "billing/events"),
            ("AUTH_LOCAL_TOKENS", "true"),
        ])
        .unwrap();
        assert_eq!(read.mode, AuthMode::Iam);
        assert_eq!(read.principals[1].1.len(), 2);
        assert_eq!(read.scopes[2], (Role::Participant, "billing/events".into()));
        assert!(read.local_tokens);
        let error = rules(&[("AUTH_MODE", "iam")]).unwrap_err();
        assert_eq!(error.variable, "AUTH_IAM_OPERATORS");
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        for (variable, value) in [("AUTH_MODE", "sigv4"), ("AUTH_LOCAL_TOKENS", "yes")] {
            let error = rules(&[(variable, value)]).unwrap_err();
            assert_eq!((error.variable, error.value.as_str()), (variable, value));
        }
    }
}
