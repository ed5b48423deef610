//! Tenant configuration: one brand of the operator's deployment.
//!
//! # Design
//! A tenant is stored and exchanged as JSON ([`TenantConfig`]). Input is parsed with unknown fields
//! refused (a typo must not silently do nothing), then checked by [`TenantConfig::validate`]; both steps
//! report a [`ConfigError`] naming the field by its JSON path (`menu[1].icon`) and what to fix.
//! Browsers only ever see [`PublicConfig`], which leaves out what is the operator's business
//! (the template customer and the upstream SIP server).

mod account;
mod config;
mod public;
mod validate;

pub use account::{validate_username, AccountInput, AccountView};
pub use config::{
    Alert, Flags, MenuItem, MenuPosition, Money, Page, Payment, Registration, SipSettings,
    TemplateCustomer, TenantConfig, Transport, Upstream, UpstreamMedia,
};
pub use public::{PublicConfig, PublicMenuItem};
pub use validate::ConfigError;
