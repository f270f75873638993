//! Finding a request's route in the table: its path parameters, a 404 or 405 for what is not
//! routed, and the access a method on a path needs.

use super::{ClientRouteEntry, Function, ROUTES, Route};
use crate::Problem;
use crate::access::Access::{self, Public, Read};

/// A request's route and the values of its path parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Matched<'a> {
    /// The route.
    pub route: &'static Route,
    params: Vec<(&'static str, &'a str)>,
}

impl<'a> Matched<'a> {
    /// The value of the path parameter `{name}`.
    pub fn param(&self, name: &str) -> &'a str {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| *value)
            .expect("the handler names a parameter of its route's template")
    }

    /// A 500 problem: the table gives this route to a function without a handler for it.
    pub fn unhandled(&self) -> Problem {
        Problem::new(
            500,
            format!(
                "{} has no handler for {} {}",
                self.route.function.name(),
                self.route.method,
                self.route.path
            ),
        )
    }
}

/// What the table says of a method on a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup<'a> {
    /// A route.
    Found(Matched<'a>),
    /// A path of the table, without this method: the methods it has, for `Allow`.
    OtherMethod(String),
    /// No path of the table.
    Unknown,
}

/// The `{name}` values a template gives a path's segments, or `None` when it does not match.
pub fn match_template<'t, 'a>(
    template: &'t str,
    segments: &[&'a str],
) -> Option<Vec<(&'t str, &'a str)>> {
    let own: Vec<&str> = template.split('/').filter(|s| !s.is_empty()).collect();
    if own.len() != segments.len() {
        return None;
    }
    let mut params = vec![];
    for (pattern, given) in own.iter().zip(segments) {
        match pattern.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) => params.push((name, *given)),
            None if pattern == given => {}
            None => return None,
        }
    }
    Some(params)
}

/// The route of a method on a path (given as its non-empty segments).
pub fn lookup<'a>(method: &str, segments: &[&'a str]) -> Lookup<'a> {
    let mut allow: Vec<&str> = vec![];
    for route in &ROUTES {
        let Some(params) = match_template(route.path, segments) else {
            continue;
        };
        if route.method == method {
            return Lookup::Found(Matched { route, params });
        }
        if !allow.contains(&route.method) {
            allow.push(route.method);
        }
    }
    if allow.is_empty() {
        Lookup::Unknown
    } else {
        Lookup::OtherMethod(allow.join(", "))
    }
}

/// The route of `function` a request is for: `Ok(None)` on a path the table does not know (a
/// client API's, or nothing), a 405 problem on a known path with another method.
pub fn dispatch<'a>(
    function: Function,
    method: &str,
    path: &str,
    segments: &[&'a str],
) -> Result<Option<Matched<'a>>, Problem> {
    match lookup(method, segments) {
        Lookup::Found(matched) if matched.route.function == function => Ok(Some(matched)),
        Lookup::Found(matched) => Err(Problem::not_found(format!(
            "{method} {path} is served by {}, not {}",
            matched.route.function.name(),
            function.name()
        ))),
        Lookup::OtherMethod(allow) => Err(Problem::method_not_allowed(method, path, allow)),
        Lookup::Unknown => Ok(None),
    }
}

/// The access a method on a path needs: its route's, from the table or the client routes; a
/// known path's other methods (a 405) and an unknown path (a 404) need a reader, and on a
/// path whose routes are all public, nothing.
pub fn access(method: &str, segments: &[&str], client: &[ClientRouteEntry]) -> Access {
    let native = ROUTES.iter().map(|r| (r.method, r.path, r.access));
    let client = client.iter().map(|r| (r.method, r.path.as_str(), r.access));
    let on_path: Vec<(&str, Access)> = native
        .chain(client)
        .filter(|(_, path, _)| match_template(path, segments).is_some())
        .map(|(m, _, access)| (m, access))
        .collect();
    if let Some((_, access)) = on_path.iter().find(|(m, _)| *m == method) {
        return *access;
    }
    if !on_path.is_empty() && on_path.iter().all(|(_, a)| *a == Public) {
        Public
    } else {
        Read
    }
}
