//! Messages between the edge's Durable Objects (internal requests, never from browsers).

use serde::{Deserialize, Serialize};

/// Header naming the tenant (its domain) on requests the Worker makes to a connection object.
pub const TENANT_HEADER: &str = "x-webphone-tenant";

/// `POST /deliver` to a connection object.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ToConnection {
    /// A SIP message to send to the browser.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The socket has registered (authenticated) as this username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_as: Option<String>,
    /// Close the socket (with this reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close: Option<String>,
}

/// `POST /event` to an account object.
#[derive(Debug, Serialize, Deserialize)]
pub struct ToAccount {
    /// The tenant's domain.
    pub tenant: String,
    /// The account's username.
    pub user: String,
    /// What happened.
    pub event: AccountEvent,
}

/// What an account object is told.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AccountEvent {
    /// A message from one of this account's browser sockets.
    Browser {
        /// The connection object's id.
        conn: String,
        /// The SIP message.
        message: String,
    },
    /// A message from another account of the same tenant.
    Account {
        /// The sending account's username.
        from_user: String,
        /// The SIP message.
        message: String,
    },
    /// A browser socket closed.
    Closed {
        /// The connection object's id.
        conn: String,
    },
}

/// The name of an account object: unique per tenant and username.
pub fn account_object_name(tenant: &str, user: &str) -> String {
    format!("{tenant}/{user}")
}
