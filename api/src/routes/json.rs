//! The route table written out as routes.json, which the template, the OpenAPI document and
//! the local watch router are checked against.

use super::{Access, ClientRouteEntry, ROUTES, access};
use Access::{Operate, Participate, Public, Read};
use serde_json::{Value, json};

/// The access's name in routes.json.
fn access_name(access: Access) -> &'static str {
    match access {
        Public => "public",
        Read => "read",
        Operate => "operate",
        Participate => "participate",
    }
}

/// The table as routes.json holds it: the routes (native, then the client APIs'), and for
/// each path the function and access of its other methods.
pub fn to_json(client: &[ClientRouteEntry]) -> Value {
    let mut routes: Vec<Value> = ROUTES
        .iter()
        .map(|r| {
            json!({"method": r.method, "path": r.path, "function": r.function.name(),
                   "access": access_name(r.access), "operation": r.operation.name()})
        })
        .collect();
    routes.extend(client.iter().map(|r| {
        json!({"method": r.method, "path": r.path, "function": r.function.name(),
               "access": access_name(r.access), "client_api": r.saga_type})
    }));
    let mut other_methods: Vec<Value> = vec![];
    let mut seen: Vec<&str> = vec![];
    let paths = ROUTES
        .iter()
        .map(|r| (r.path, r.function))
        .chain(client.iter().map(|r| (r.path.as_str(), r.function)));
    for (path, function) in paths {
        if seen.contains(&path) {
            continue;
        }
        seen.push(path);
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let access = access("ANY", &segments, client);
        other_methods.push(json!({"path": path, "function": function.name(),
                                  "access": access_name(access)}));
    }
    json!({
        "generated_by": "api/src/routes.rs (UPDATE_ROUTES=1 cargo test -p saga-api routes_json)",
        "routes": routes,
        "other_methods": other_methods,
    })
}
