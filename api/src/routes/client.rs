//! The routes a saga type's definition declares in its client API, as the route checks and
//! routes.json see them.

use super::{Access, Function};
use Access::{Operate, Read};
use Function::{SagaStatus, StartSaga};
use saga::definition::client_api::ClientApi;

/// A route of a saga type's client API, as the auth check and routes.json see it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientRouteEntry {
    /// `POST` (a start route) or `GET` (a read route).
    pub method: &'static str,
    /// The path template.
    pub path: String,
    /// start-saga for a start route, saga-status for a read route.
    pub function: Function,
    /// Operate for a start route, Read for a read route.
    pub access: Access,
    /// The saga type whose definition declares it.
    pub saga_type: String,
}

/// The routes of these client APIs.
pub fn client_routes(apis: &[(String, ClientApi)]) -> Vec<ClientRouteEntry> {
    let mut routes = vec![];
    for (saga_type, api) in apis {
        for route in &api.routes {
            let (_, path) = route.route.split_once(' ').unwrap_or_default();
            let (function, access) = if route.start {
                (StartSaga, Operate)
            } else {
                (SagaStatus, Read)
            };
            routes.push(ClientRouteEntry {
                method: route.method(),
                path: path.to_string(),
                function,
                access,
                saga_type: saga_type.clone(),
            });
        }
    }
    routes
}
