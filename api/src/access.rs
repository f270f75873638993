//! The callers' roles, and the access each route declares in the route table.

/// A caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reads sagas.
    Reader,
    /// Starts, cancels and redrives sagas, and reads them.
    Operator,
    /// Posts participant events.
    Participant,
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing: `/health` and the dashboard page.
    Public,
    /// A reader or an operator.
    Read,
    /// An operator.
    Operate,
    /// A participant.
    Participate,
}

impl Access {
    /// Whether a caller with `role` may call a route that needs this.
    pub fn allows(self, role: Role) -> bool {
        match self {
            Access::Public => true,
            Access::Read => matches!(role, Role::Reader | Role::Operator),
            Access::Operate => role == Role::Operator,
            Access::Participate => role == Role::Participant,
        }
    }
}
