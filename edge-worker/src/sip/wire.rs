//! Messages between the edge's Durable Objects (internal requests, never from browsers).

use serde::{Deserialize, Serialize};

/// Header naming the tenant (its domain) on requests the Worker makes to a connection object.
pub const TENANT_HEADER: &str = "x-webphone-tenant";
/// Header with where Cloudflare saw the browser, `COUNTRY/CONTINENT` (either may be empty), on the
/// same requests: account objects pick media nodes near it.
pub const CALLER_HEADER: &str = "x-webphone-caller";

/// Where a browser is, as Cloudflare's edge saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerLocation {
    /// ISO 3166 country code, e.g. `DE`.
    pub country: Option<String>,
    /// Continent code, e.g. `EU`.
    pub continent: Option<String>,
}

impl CallerLocation {
    /// Reads the `COUNTRY/CONTINENT` header value.
    pub fn from_header(value: &str) -> Self {
        let (country, continent) = value.split_once('/').unwrap_or((value, ""));
        let field = |s: &str| (!s.is_empty() && s.len() <= 8).then(|| s.to_owned());
        Self {
            country: field(country),
            continent: field(continent),
        }
    }

    /// The header value.
    pub fn to_header(&self) -> String {
        format!(
            "{}/{}",
            self.country.as_deref().unwrap_or(""),
            self.continent.as_deref().unwrap_or("")
        )
    }
}

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
        /// Where the browser is.
        #[serde(default)]
        caller: CallerLocation,
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
