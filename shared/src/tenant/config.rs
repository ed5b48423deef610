//! The tenant configuration schema.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::host::Hostname;

/// One tenant (brand): its two domains, branding, menu, flags and SIP settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Domain A: where customers open the phone, and the domain of their SIP addresses
    /// (`sip:USER@domain`).
    pub domain: Hostname,
    /// The product name shown wherever the phone names itself.
    pub brand_name: String,
    /// Domain B, the "WebRTC host": where browsers open the SIP-over-WebSocket connection.
    pub webrtc_host: Hostname,
    /// Defaults copied into a customer created by self sign-up.
    #[serde(default)]
    pub template_customer: TemplateCustomer,
    /// HTML shown after a successful sign-up.
    #[serde(default)]
    pub register_success_html: String,
    /// The bottom menu. Empty means the phone's built-in menu (dialpad, history, settings).
    #[serde(default)]
    pub menu: Vec<MenuItem>,
    /// Feature switches.
    #[serde(default)]
    pub flags: Flags,
    /// How accounts register and where calls leave the platform.
    #[serde(default)]
    pub sip: SipSettings,
}

impl TenantConfig {
    /// Parses and validates a tenant from JSON, naming the offending field on error.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let config: Self = serde_path_to_error::deserialize(de).map_err(ConfigError::from_serde)?;
        config.validate()?;
        Ok(config)
    }

    /// The hosts this tenant answers on: its domain and, when different, its WebRTC host.
    pub fn hosts(&self) -> Vec<&Hostname> {
        let mut hosts = vec![&self.domain];
        if self.webrtc_host != self.domain {
            hosts.push(&self.webrtc_host);
        }
        hosts
    }
}

/// Defaults for customers created by self sign-up (the "template customer").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateCustomer {
    /// ISO 4217 currency of every amount below, e.g. `USD`.
    #[serde(default = "default_currency")]
    pub currency: String,
    /// How far the balance may go below zero before calls are refused.
    #[serde(default)]
    pub debit_limit: Money,
    /// Names of the routes (rate cards) the customer may call through.
    #[serde(default)]
    pub routes: Vec<String>,
    /// Payments booked when the customer is created, e.g. a starting credit.
    #[serde(default)]
    pub payments: Vec<Payment>,
    /// Balance alerts.
    #[serde(default)]
    pub alerts: Vec<Alert>,
    /// Names of packages (bundles of minutes or numbers) the customer starts with.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Names of contracts the customer is put on.
    #[serde(default)]
    pub contracts: Vec<String>,
}

fn default_currency() -> String {
    "USD".to_owned()
}

impl Default for TemplateCustomer {
    fn default() -> Self {
        Self {
            currency: default_currency(),
            debit_limit: Money::default(),
            routes: Vec::new(),
            payments: Vec::new(),
            alerts: Vec::new(),
            packages: Vec::new(),
            contracts: Vec::new(),
        }
    }
}

/// A payment booked on a new customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Payment {
    /// The amount, e.g. `"5.00"`.
    pub amount: Money,
    /// What the customer sees on their statement.
    #[serde(default)]
    pub description: String,
}

/// A balance alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    /// Alert when the balance falls below this amount.
    pub below: Money,
    /// Send the alert by email.
    #[serde(default)]
    pub email: bool,
}

/// An amount of money in hundredths (cents), written as a decimal string such as `"5.00"` or `"-2.5"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money {
    /// The amount in hundredths of the currency unit.
    pub cents: i64,
}

impl Money {
    /// Parses `"5"`, `"5.0"`, `"5.00"` or `"-0.25"`; refuses more than two decimals.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (negative, digits) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !all_digits(whole)
            || !all_digits(frac)
            || (digits.contains('.') && frac.is_empty())
        {
            return Err(format!("{s:?} is not an amount; write it like \"5.00\""));
        }
        if frac.len() > 2 {
            return Err(format!("{s:?} has more than two decimals"));
        }
        let whole: i64 = whole
            .parse()
            .ok()
            .filter(|w: &i64| *w < i64::MAX / 100)
            .ok_or_else(|| format!("{s:?} is too large"))?;
        let frac: i64 = format!("{frac:0<2}").parse().unwrap_or(0);
        let cents = whole * 100 + frac;
        Ok(Self {
            cents: if negative { -cents } else { cents },
        })
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.cents < 0 { "-" } else { "" };
        let abs = self.cents.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Money::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// One entry of the bottom menu.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuItem {
    /// The label under the icon.
    pub title: String,
    /// A Material Design Icons name, e.g. `mdi-phone` (the `mdi-` prefix is optional).
    pub icon: String,
    /// Where the item sits: 1 is far left; `"disabled"` hides it.
    pub position: MenuPosition,
    /// A built-in page this item opens. Exactly one of `page` and `template` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<Page>,
    /// HTML of a custom page. Content starting with `<!-- NO-CONTAINER -->` is shown frameless,
    /// filling the space (for example a full-size iframe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
}

/// The marker that makes a template page frameless.
pub const NO_CONTAINER_MARKER: &str = "<!-- NO-CONTAINER -->";

impl MenuItem {
    /// Whether this item's template page is shown without the page frame.
    pub fn frameless(&self) -> bool {
        self.template
            .as_deref()
            .is_some_and(|t| t.trim_start().starts_with(NO_CONTAINER_MARKER))
    }
}

/// A built-in page of the phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Page {
    /// The dialpad.
    Dialpad,
    /// Call history.
    History,
    /// Settings.
    Settings,
}

/// Where a menu item sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MenuPosition {
    /// Slot number, 1 = far left.
    Slot(u8),
    /// Not shown.
    Disabled,
}

impl Serialize for MenuPosition {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Slot(n) => s.serialize_u8(*n),
            Self::Disabled => s.serialize_str("disabled"),
        }
    }
}

impl<'de> Deserialize<'de> for MenuPosition {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        const HINT: &str = "position must be a slot number from 1 (far left) or \"disabled\"";
        match Raw::deserialize(d)? {
            Raw::Number(n) => u8::try_from(n)
                .ok()
                .filter(|n| *n >= 1)
                .map(Self::Slot)
                .ok_or_else(|| serde::de::Error::custom(HINT)),
            Raw::Text(t) if t == "disabled" => Ok(Self::Disabled),
            Raw::Text(_) => Err(serde::de::Error::custom(HINT)),
        }
    }
}

/// Feature switches of a tenant's phone. All are off unless set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Flags {
    /// Hide the deploy and version id normally shown in the side menu (used in support requests).
    pub hide_uuid: bool,
    /// Put the side menu on the right.
    pub menu_right: bool,
    /// Show the account balance in the header.
    pub display_balance: bool,
    /// Let users change settings (otherwise they are read-only).
    pub edit_settings: bool,
    /// Allow self sign-up; otherwise only existing SIP accounts can sign in.
    pub register: bool,
    /// Use the signed-in username as the page title.
    pub username_as_title: bool,
    /// Offer payments (top-ups) in the phone.
    pub accept_payment: bool,
    /// Answer incoming calls at once.
    pub auto_answer: bool,
}

/// How the tenant's SIP accounts register and where their calls go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SipSettings {
    /// Who checks passwords and holds registrations.
    #[serde(default)]
    pub registration: Registration,
    /// The tenant's upstream SIP server (the one that owns their numbers). Calls to numbers that are
    /// not accounts of the tenant go there; in `relay` mode registrations go there too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Upstream>,
}

/// Registration mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    /// Accounts live in the platform's database; the edge checks digest credentials itself.
    #[default]
    Local,
    /// REGISTER is relayed to the upstream SIP server, which checks credentials.
    Relay,
}

/// An upstream SIP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Hostname or IP address.
    pub host: Hostname,
    /// Port; 5060 for TCP and 5061 for TLS when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `tcp` or `tls`.
    #[serde(default)]
    pub transport: Transport,
    /// How call media reaches it.
    #[serde(default)]
    pub media: UpstreamMedia,
}

/// How media of calls to and from the upstream flows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamMedia {
    /// Through a media node, which turns the browser's WebRTC (ICE, DTLS-SRTP) into plain RTP.
    #[default]
    Bridge,
    /// The SDP passes through unchanged: only for upstreams that speak WebRTC media themselves.
    Passthrough,
}

impl Upstream {
    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.transport {
            Transport::Tcp => 5060,
            Transport::Tls => 5061,
        })
    }
}

/// Transport toward an upstream SIP server. (Workers can open TCP and TLS connections, not UDP.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// SIP over TCP.
    #[default]
    Tcp,
    /// SIP over TLS.
    Tls,
}
