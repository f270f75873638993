//! Who may call which route. Three roles: readers (the GET routes), operators (start, cancel,
//! redrive and the other writes, and reads) and participants (`POST /events`); each route
//! declares the [`Access`] it needs in the route table ([`super::routes`]). API Gateway checks
//! them first (template.yaml: a JWT scope per route group, or an IAM policy per role); each
//! HTTP function checks them again from the authorizer's context before it routes, so a route
//! the template leaves open, and the local stack, enforce the same rules.

pub use crate::access::{Access, Role};

use super::Problem;
use super::routes::{self, ClientRouteEntry};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use saga::definition::Definitions;
use std::future::Future;

/// Where a caller's roles come from (`AUTH_MODE`, as template.yaml's `ApiAuth` sets it).
#[derive(Debug, Clone, PartialEq)]
pub enum AuthMode {
    /// The JWT authorizer's scopes (`jwt`).
    Jwt,
    /// The IAM principal, matched against each role's principal patterns (`iam`).
    Iam,
    /// No check (`none`): only where the deployment puts its own authorization in front.
    None,
}

/// The settings of the check.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthRules {
    /// Where roles come from.
    pub mode: AuthMode,
    /// The JWT scope of each role (`AUTH_READ_SCOPE`, `AUTH_OPERATE_SCOPE`,
    /// `AUTH_PARTICIPATE_SCOPE`; default `saga/read`, `saga/operate`, `saga/participate`).
    pub scopes: Vec<(Role, String)>,
    /// The IAM principal ARN patterns of each role (`AUTH_IAM_READERS`, `AUTH_IAM_OPERATORS`,
    /// `AUTH_IAM_PARTICIPANTS`: comma-separated, `*` matches any run of characters).
    pub principals: Vec<(Role, Vec<String>)>,
    /// Whether a request without an authorizer context may bring its scopes in an unsigned
    /// bearer token (`AUTH_LOCAL_TOKENS`): the local stack only, where no authorizer runs.
    pub local_tokens: bool,
    /// The deployed definitions' client API routes, whose access the route table does not
    /// hold (default: the bundled definitions').
    pub client_routes: Vec<ClientRouteEntry>,
}

impl Default for AuthRules {
    fn default() -> Self {
        Self {
            mode: AuthMode::Jwt,
            scopes: vec![
                (Role::Reader, "saga/read".into()),
                (Role::Operator, "saga/operate".into()),
                (Role::Participant, "saga/participate".into()),
            ],
            principals: vec![],
            local_tokens: false,
            client_routes: routes::client_routes(&Definitions::declared_client_apis(
                Definitions::bundled_files().map(|(_, text)| text),
            )),
        }
    }
}

impl AuthRules {
    /// The access a method on a path needs: its route's (see [`routes::access`]).
    pub fn required(&self, method: &str, path: &str) -> Access {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        routes::access(method, &segments, &self.client_routes)
    }

    /// Refuses a request whose caller lacks the role its route needs: 401 without credentials,
    /// 403 with credentials of another role.
    pub fn check(&self, request: &Request) -> Result<(), Problem> {
        let access = self.required(request.method().as_str(), request.uri().path());
        if access == Access::Public || self.mode == AuthMode::None {
            return Ok(());
        }
        let roles = match self.mode {
            AuthMode::Jwt => self.jwt_roles(request),
            _ => self.iam_roles(request),
        }
        .ok_or_else(|| self.unauthenticated())?;
        if roles.iter().any(|role| access.allows(*role)) {
            return Ok(());
        }
        Err(Problem::new(
            403,
            format!(
                "{} {} needs {}; the caller has {}",
                request.method(),
                request.uri().path(),
                self.needed(access),
                self.describe(&roles)
            ),
        ))
    }

    /// Answers with the handler's response, or with the refusal.
    pub async fn guard<F>(
        &self,
        request: Request,
        handle: impl FnOnce(Request) -> F,
    ) -> Response<Body>
    where
        F: Future<Output = Response<Body>>,
    {
        match self.check(&request) {
            Ok(()) => handle(request).await,
            Err(problem) => problem.into_response(),
        }
    }

    /// The roles of the JWT's scopes: from the authorizer's context, else (local stack) from
    /// an unsigned bearer token; `None` without either.
    fn jwt_roles(&self, request: &Request) -> Option<Vec<Role>> {
        let scopes = match request.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(context)) => context
                .authorizer
                .as_ref()
                .and_then(|a| a.jwt.as_ref())
                .map(|jwt| {
                    let mut scopes = jwt.scopes.clone().unwrap_or_default();
                    for claim in ["scope", "scp"] {
                        scopes.extend(jwt.claims.get(claim).map_or(vec![], |v| split_scopes(v)));
                    }
                    scopes
                }),
            _ => None,
        };
        let scopes = match scopes {
            Some(scopes) => scopes,
            None if self.local_tokens => local_token_scopes(request)?,
            None => return None,
        };
        Some(
            self.scopes
                .iter()
                .filter(|(_, scope)| scopes.contains(scope))
                .map(|(role, _)| *role)
                .collect(),
        )
    }

    /// The roles whose principal patterns match the IAM caller; `None` without an IAM caller.
    fn iam_roles(&self, request: &Request) -> Option<Vec<Role>> {
        let Some(RequestContext::ApiGatewayV2(context)) = request.request_context_ref() else {
            return None;
        };
        let arn = context
            .authorizer
            .as_ref()?
            .iam
            .as_ref()?
            .user_arn
            .clone()?;
        Some(
            self.principals
                .iter()
                .filter(|(_, patterns)| patterns.iter().any(|p| matches_pattern(p, &arn)))
                .map(|(role, _)| *role)
                .collect(),
        )
    }

    fn unauthenticated(&self) -> Problem {
        let (detail, challenge) = match self.mode {
            AuthMode::Iam => ("this route needs a SigV4-signed request", None),
            _ => ("this route needs a bearer token", Some("Bearer")),
        };
        Problem {
            www_authenticate: challenge,
            ..Problem::new(401, detail)
        }
    }

    /// What the access needs, in the mode's terms.
    fn needed(&self, access: Access) -> String {
        let roles: Vec<Role> = [Role::Reader, Role::Operator, Role::Participant]
            .into_iter()
            .filter(|role| access.allows(*role))
            .collect();
        match self.mode {
            AuthMode::Iam => format!("the IAM role {}", role_names(&roles)),
            _ => format!("the scope {}", self.scope_names(&roles)),
        }
    }

    fn describe(&self, roles: &[Role]) -> String {
        match (roles.is_empty(), &self.mode) {
            (true, AuthMode::Iam) => "no role of this API".into(),
            (true, _) => "none of this API's scopes".into(),
            (false, AuthMode::Iam) => format!("the IAM role {}", role_names(roles)),
            (false, _) => format!("the scope {}", self.scope_names(roles)),
        }
    }

    fn scope_names(&self, roles: &[Role]) -> String {
        let names: Vec<&str> = self
            .scopes
            .iter()
            .filter(|(role, _)| roles.contains(role))
            .map(|(_, scope)| scope.as_str())
            .collect();
        names.join(" or ")
    }
}

fn role_names(roles: &[Role]) -> String {
    let names: Vec<String> = roles
        .iter()
        .map(|role| format!("{role:?}").to_lowercase())
        .collect();
    names.join(" or ")
}

/// Scopes in a claim: `a b` (`scope`), or `[a b]` / `["a","b"]` as API Gateway flattens a
/// list claim (`scp`).
fn split_scopes(claim: &str) -> Vec<String> {
    claim
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(|s| s.trim_matches(|c| matches!(c, '[' | ']' | '"')))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The scopes of an unsigned bearer token's payload (`scope` or `scp`), as the local stack's
/// clients send them; its signature is not checked, hence local only.
fn local_token_scopes(request: &Request) -> Option<Vec<String>> {
    let header = request.headers().get("authorization")?.to_str().ok()?;
    let token = header.strip_prefix("Bearer ")?;
    let payload = URL_SAFE_NO_PAD.decode(token.split('.').nth(1)?).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&payload).ok()?;
    let mut scopes = vec![];
    for claim in ["scope", "scp"] {
        match claims.get(claim) {
            Some(serde_json::Value::String(text)) => scopes.extend(split_scopes(text)),
            Some(serde_json::Value::Array(items)) => {
                scopes.extend(items.iter().filter_map(|s| s.as_str().map(str::to_string)))
            }
            _ => {}
        }
    }
    Some(scopes)
}

/// An ARN pattern: `*` matches any run of characters, the rest matches itself.
fn matches_pattern(pattern: &str, arn: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = arn.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request as API Gateway sends it, with this authorizer context (JSON) or none.
    fn request(method: &str, path: &str, authorizer: Option<serde_json::Value>) -> Request {
        request_with(method, path, authorizer, None)
    }

    fn request_with(
        method: &str,
        path: &str,
        authorizer: Option<serde_json::Value>,
        bearer: Option<&str>,
    ) -> Request {
        let mut context = serde_json::json!({
            "accountId": "123456789012", "apiId": "api", "requestId": "r", "stage": "$default",
            "routeKey": "$default", "time": "22/Nov/2026:05:00:00 +0000", "timeEpoch": 0,
            "domainName": "api", "domainPrefix": "api",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "test"}
        });
        if let Some(authorizer) = authorizer {
            context["authorizer"] = authorizer;
        }
        let mut headers = serde_json::json!({"host": "api"});
        if let Some(token) = bearer {
            headers["authorization"] = format!("Bearer {token}").into();
        }
        let event = serde_json::json!({
            "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
            "headers": headers, "requestContext": context, "isBase64Encoded": false
        });
        lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway event")
    }

    fn jwt(scope: &str) -> Option<serde_json::Value> {
        Some(serde_json::json!({"jwt": {"claims": {"sub": "u", "scope": scope}, "scopes": null}}))
    }

    fn iam(arn: &str) -> Option<serde_json::Value> {
        Some(serde_json::json!({"iam": {"userArn": arn, "accountId": "123456789012"}}))
    }

    fn status(rules: &AuthRules, request: &Request) -> u16 {
        rules.check(request).map_or_else(|p| p.status, |()| 200)
    }

    const WRITES: [&str; 6] = [
        "/sagas/image",
        "/saga",
        "/sagas/4f1c2a9e-8b7d-4e3a-9c61-2d5f0b7a1e38/cancel",
        "/sagas/4f1c2a9e-8b7d-4e3a-9c61-2d5f0b7a1e38/redrive",
        "/api/v1/pedidos/",
        "/campana-saga",
    ];

    #[test]
    fn routes_need_the_role_the_table_declares() {
        let rules = AuthRules::default();
        let required = |method, path| rules.required(method, path);
        assert_eq!(required("GET", "/sagas"), Access::Read);
        assert_eq!(required("DELETE", "/sagas/x"), Access::Read);
        assert_eq!(required("POST", "/sagas/x/history"), Access::Read);
        assert_eq!(required("POST", "/events"), Access::Participate);
        assert_eq!(required("POST", "/events/"), Access::Participate);
        for path in WRITES {
            assert_eq!(required("POST", path), Access::Operate, "{path}");
        }
        for path in ["/health", "/ui", "/api/v1/saga/health", "/ui/"] {
            assert_eq!(required("GET", path), Access::Public, "{path}");
            assert_eq!(required("POST", path), Access::Public, "{path}");
        }
        let without_client_apis = AuthRules {
            client_routes: vec![],
            ..AuthRules::default()
        };
        let path = "/campana-saga";
        assert_eq!(without_client_apis.required("POST", path), Access::Read);
    }

    #[test]
    fn jwt_scopes_decide_the_roles() {
        let rules = AuthRules::default();
        let reader = jwt("openid saga/read");
        for path in WRITES {
            assert_eq!(status(&rules, &request("POST", path, reader.clone())), 403);
            assert_eq!(
                status(&rules, &request("POST", path, jwt("saga/participate"))),
                403
            );
            assert_eq!(
                status(&rules, &request("POST", path, jwt("saga/operate"))),
                200
            );
        }
        assert_eq!(
            status(&rules, &request("POST", "/events", reader.clone())),
            403
        );
        assert_eq!(
            status(&rules, &request("POST", "/events", jwt("saga/operate"))),
            403
        );
        assert_eq!(
            status(&rules, &request("POST", "/events", jwt("saga/participate"))),
            200
        );
        assert_eq!(status(&rules, &request("GET", "/sagas", reader)), 200);
        assert_eq!(
            status(&rules, &request("GET", "/sagas", jwt("saga/operate"))),
            200
        );
        assert_eq!(
            status(&rules, &request("GET", "/sagas", jwt("saga/participate"))),
            403
        );
        assert_eq!(status(&rules, &request("GET", "/sagas", None)), 401);
        assert_eq!(status(&rules, &request("GET", "/health", None)), 200);
    }

    #[test]
    fn scopes_come_from_the_scopes_list_and_from_an_scp_claim() {
        let rules = AuthRules::default();
        let listed = Some(serde_json::json!({"jwt": {"claims": {}, "scopes": ["saga/operate"]}}));
        assert_eq!(status(&rules, &request("POST", "/saga", listed)), 200);
        let scp = Some(serde_json::json!({"jwt": {"claims": {"scp": "[saga/read saga/operate]"}}}));
        assert_eq!(status(&rules, &request("POST", "/saga", scp)), 200);
    }

    #[test]
    fn a_refusal_says_what_is_needed() {
        let problem = AuthRules::default()
            .check(&request("POST", "/sagas/image", jwt("saga/read")))
            .unwrap_err();
        assert_eq!(problem.title, "Forbidden");
        assert_eq!(
            problem.detail,
            "POST /sagas/image needs the scope saga/operate; the caller has the scope saga/read"
        );
        let problem = AuthRules::default()
            .check(&request("GET", "/sagas", None))
            .unwrap_err();
        assert_eq!(problem.www_authenticate, Some("Bearer"));
    }

    #[test]
    fn unsigned_tokens_count_only_where_local_tokens_are_on_and_no_authorizer_ran() {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        let payload = URL_SAFE_NO_PAD.encode(br#"{"scope":"saga/operate"}"#);
        let token = format!("{header}.{payload}.");
        let unsigned = request_with("POST", "/saga", None, Some(&token));
        assert_eq!(status(&AuthRules::default(), &unsigned), 401);
        let local = AuthRules {
            local_tokens: true,
            ..AuthRules::default()
        };
        assert_eq!(status(&local, &unsigned), 200);
        // An authorizer's context wins over the header.
        let both = request_with("POST", "/saga", jwt("saga/read"), Some(&token));
        assert_eq!(status(&local, &both), 403);
        let garbage = request_with("POST", "/saga", None, Some("not-a-token"));
        assert_eq!(status(&local, &garbage), 401);
    }

    #[test]
    fn iam_principals_map_to_roles() {
        let rules = AuthRules {
            mode: AuthMode::Iam,
            principals: vec![
                (
                    Role::Reader,
                    vec!["arn:aws:sts::1:assumed-role/readers/*".into()],
                ),
                (Role::Operator, vec!["arn:aws:iam::1:user/ops".into()]),
                (
                    Role::Participant,
                    vec!["arn:aws:sts::1:assumed-role/*-participant/*".into()],
                ),
            ],
            ..AuthRules::default()
        };
        let reader = iam("arn:aws:sts::1:assumed-role/readers/s1");
        let participant = iam("arn:aws:sts::1:assumed-role/billing-participant/s2");
        assert_eq!(
            status(&rules, &request("GET", "/sagas", reader.clone())),
            200
        );
        assert_eq!(status(&rules, &request("POST", "/saga", reader)), 403);
        assert_eq!(
            status(
                &rules,
                &request("POST", "/saga", iam("arn:aws:iam::1:user/ops"))
            ),
            200
        );
        assert_eq!(
            status(
                &rules,
                &request("POST", "/saga", iam("arn:aws:iam::1:user/ops2"))
            ),
            403
        );
        assert_eq!(
            status(&rules, &request("POST", "/events", participant.clone())),
            200
        );
        assert_eq!(status(&rules, &request("POST", "/saga", participant)), 403);
        assert_eq!(
            status(&rules, &request("GET", "/sagas", jwt("saga/read"))),
            401
        );
        let off = AuthRules {
            mode: AuthMode::None,
            ..AuthRules::default()
        };
        assert_eq!(status(&off, &request("POST", "/saga", None)), 200);
    }

    #[test]
    fn patterns_match_whole_arns() {
        assert!(matches_pattern("arn:a", "arn:a"));
        assert!(!matches_pattern("arn:a", "arn:ab"));
        assert!(matches_pattern("arn:*", "arn:ab"));
        assert!(matches_pattern("*:b/*/c", "arn:b/x/y/c"));
        assert!(!matches_pattern("a*a", "a"));
    }
}
