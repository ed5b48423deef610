//! Checks on a parsed tenant that the type system does not make.

use std::collections::BTreeMap;
use std::fmt;

use super::config::{MenuPosition, Registration, TenantConfig};

/// A tenant configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The input is not JSON at all (or is cut short).
    #[error("body is not valid JSON: {0}")]
    Syntax(String),
    /// A field is missing, unknown, of the wrong type, or has a value that is not allowed.
    #[error("{field}: {reason}")]
    Field {
        /// JSON path of the field, e.g. `menu[1].icon`; `.` for the document itself.
        field: String,
        /// What is wrong and what is expected.
        reason: String,
    },
}

impl ConfigError {
    fn field(field: impl fmt::Display, reason: impl Into<String>) -> Self {
        Self::Field {
            field: field.to_string(),
            reason: reason.into(),
        }
    }

    /// The JSON path of the refused field, if the error is about one.
    pub fn field_path(&self) -> Option<&str> {
        match self {
            Self::Syntax(_) => None,
            Self::Field { field, .. } => Some(field),
        }
    }

    pub(crate) fn from_serde(err: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                Self::Syntax(inner.to_string())
            }
            serde_json::error::Category::Data | serde_json::error::Category::Io => {
                // serde_json appends " at line L column C"; the path says more than that.
                let message = inner.to_string();
                let reason = message
                    .rsplit_once(" at line ")
                    .map_or(message.as_str(), |(m, _)| m);
                Self::field(path, reason)
            }
        }
    }
}

const MAX_MENU_ITEMS: usize = 10;
const MAX_TITLE: usize = 40;
const MAX_BRAND: usize = 100;
const MAX_HTML: usize = 256 * 1024;

impl TenantConfig {
    /// Checks limits and cross-field rules; the error names the first field that fails.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_text("brand_name", &self.brand_name, MAX_BRAND)?;
        if self.register_success_html.len() > MAX_HTML {
            return Err(ConfigError::field(
                "register_success_html",
                "must be at most 256 KiB",
            ));
        }
        self.validate_template_customer()?;
        self.validate_menu()?;
        if self.sip.registration == Registration::Relay && self.sip.upstream.is_none() {
            return Err(ConfigError::field(
                "sip.upstream",
                "is required when sip.registration is \"relay\": name the SIP server to relay to",
            ));
        }
        Ok(())
    }

    fn validate_template_customer(&self) -> Result<(), ConfigError> {
        let t = &self.template_customer;
        if t.currency.len() != 3 || !t.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(ConfigError::field(
                "template_customer.currency",
                "must be an ISO 4217 code of three capital letters, e.g. \"USD\"",
            ));
        }
        if t.debit_limit.cents < 0 {
            return Err(ConfigError::field(
                "template_customer.debit_limit",
                "must not be negative",
            ));
        }
        for (i, p) in t.payments.iter().enumerate() {
            if p.amount.cents <= 0 {
                return Err(ConfigError::field(
                    format_args!("template_customer.payments[{i}].amount"),
                    "must be more than zero",
                ));
            }
        }
        let lists = [
            ("routes", &t.routes),
            ("packages", &t.packages),
            ("contracts", &t.contracts),
        ];
        for (name, list) in lists {
            for (i, item) in list.iter().enumerate() {
                check_text(
                    format_args!("template_customer.{name}[{i}]"),
                    item,
                    MAX_BRAND,
                )?;
            }
        }
        Ok(())
    }

    fn validate_menu(&self) -> Result<(), ConfigError> {
        if self.menu.len() > MAX_MENU_ITEMS {
            return Err(ConfigError::field(
                "menu",
                format!("must have at most {MAX_MENU_ITEMS} items"),
            ));
        }
        let mut slots: BTreeMap<u8, usize> = BTreeMap::new();
        for (i, item) in self.menu.iter().enumerate() {
            check_text(format_args!("menu[{i}].title"), &item.title, MAX_TITLE)?;
            if !is_mdi_name(&item.icon) {
                return Err(ConfigError::field(
                    format_args!("menu[{i}].icon"),
                    format!(
                        "{:?} is not a Material Design Icons name; use lower-case words joined by \
                         hyphens, e.g. \"mdi-phone\" or \"account-circle\"",
                        item.icon
                    ),
                ));
            }
            match (&item.page, &item.template) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(ConfigError::field(
                        format_args!("menu[{i}]"),
                        "set exactly one of `page` (a built-in page) and `template` (custom HTML)",
                    ));
                }
                (None, Some(t)) if t.len() > MAX_HTML => {
                    return Err(ConfigError::field(
                        format_args!("menu[{i}].template"),
                        "must be at most 256 KiB",
                    ));
                }
                _ => {}
            }
            if let MenuPosition::Slot(n) = item.position {
                if usize::from(n) > MAX_MENU_ITEMS {
                    return Err(ConfigError::field(
                        format_args!("menu[{i}].position"),
                        format!("must be between 1 and {MAX_MENU_ITEMS}, or \"disabled\""),
                    ));
                }
                if let Some(other) = slots.insert(n, i) {
                    return Err(ConfigError::field(
                        format_args!("menu[{i}].position"),
                        format!("slot {n} is already taken by menu[{other}]"),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn check_text(field: impl fmt::Display, value: &str, max_chars: usize) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        return Err(ConfigError::field(field, "must not be empty"));
    }
    if value.chars().count() > max_chars {
        return Err(ConfigError::field(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ConfigError::field(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// `mdi-phone`, `phone`, `account-circle-outline`: lower-case ASCII words joined by single hyphens.
fn is_mdi_name(name: &str) -> bool {
    let name = name.strip_prefix("mdi-").unwrap_or(name);
    !name.is_empty()
        && name.len() <= 64
        && name.split('-').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenant::{Flags, Money, Page};

    fn minimal() -> serde_json::Value {
        serde_json::json!({
            "domain": "phone.example.com",
            "brand_name": "Example Phone",
            "webrtc_host": "sip.example.com"
        })
    }

    fn parse(v: &serde_json::Value) -> Result<TenantConfig, ConfigError> {
        TenantConfig::from_json(v.to_string().as_bytes())
    }

    fn refused_field(v: &serde_json::Value) -> String {
        match parse(v) {
            Err(e) => e.field_path().unwrap_or("<syntax>").to_owned(),
            Ok(_) => panic!("config was accepted: {v}"),
        }
    }

    #[test]
    fn minimal_tenant_gets_defaults() {
        let t = parse(&minimal()).unwrap();
        assert_eq!(t.flags, Flags::default());
        assert!(
            !t.flags.edit_settings,
            "settings are read-only unless edit_settings is set"
        );
        assert_eq!(t.template_customer.currency, "USD");
        assert_eq!(t.sip.registration, Registration::Local);
        assert_eq!(t.hosts().len(), 2);
    }

    #[test]
    fn full_tenant_round_trips_through_json() {
        let mut v = minimal();
        v["template_customer"] = serde_json::json!({
            "currency": "EUR", "debit_limit": "10", "routes": ["retail"],
            "payments": [{"amount": "5.00", "description": "Welcome credit"}],
            "alerts": [{"below": "1.50", "email": true}], "packages": ["100 minutes"], "contracts": ["monthly"]
        });
        v["menu"] = serde_json::json!([
            {"title": "Dialpad", "icon": "mdi-dialpad", "position": 1, "page": "dialpad"},
            {"title": "Shop", "icon": "cart", "position": "disabled", "template": "<!-- NO-CONTAINER --><iframe></iframe>"}
        ]);
        v["flags"] = serde_json::json!({"menu_right": true, "auto_answer": true});
        v["sip"] = serde_json::json!({"registration": "relay", "upstream": {"host": "pbx.example.com", "transport": "tls"}});
        let t = parse(&v).unwrap();
        assert_eq!(t.template_customer.payments[0].amount, Money { cents: 500 });
        assert_eq!(t.menu[0].page, Some(Page::Dialpad));
        assert!(t.menu[1].frameless());
        assert_eq!(t.sip.upstream.as_ref().map(|u| u.port()), Some(5061));
        let again = TenantConfig::from_json(serde_json::to_string(&t).unwrap().as_bytes()).unwrap();
        assert_eq!(again, t);
    }

    #[test]
    fn unknown_field_is_refused_with_its_name() {
        let mut v = minimal();
        v["flags"] = serde_json::json!({"auto_anwser": true});
        let err = parse(&v).unwrap_err();
        assert_eq!(err.field_path(), Some("flags.auto_anwser"));
        assert!(err.to_string().contains("auto_anwser"), "{err}");
    }

    #[test]
    fn hostname_with_scheme_is_refused_naming_the_field() {
        let mut v = minimal();
        v["webrtc_host"] = "wss://sip.example.com".into();
        assert_eq!(refused_field(&v), "webrtc_host");
    }

    #[test]
    fn empty_brand_name_is_refused() {
        let mut v = minimal();
        v["brand_name"] = "  ".into();
        assert_eq!(refused_field(&v), "brand_name");
    }

    #[test]
    fn bad_menu_entries_are_refused_naming_the_item() {
        let item = |icon: &str, pos: serde_json::Value| serde_json::json!({"title": "X", "icon": icon, "position": pos, "page": "history"});
        let mut v = minimal();
        v["menu"] = serde_json::json!([item("phone", 1.into()), item("Phone Icon", 2.into())]);
        assert_eq!(refused_field(&v), "menu[1].icon");
        v["menu"] = serde_json::json!([item("phone", 1.into()), item("cog", 1.into())]);
        assert_eq!(refused_field(&v), "menu[1].position");
        v["menu"] = serde_json::json!([item("phone", 0.into())]);
        assert_eq!(refused_field(&v), "menu[0].position");
        v["menu"] = serde_json::json!([{"title": "X", "icon": "phone", "position": 1}]);
        assert_eq!(refused_field(&v), "menu[0]");
    }

    #[test]
    fn amounts_need_at_most_two_decimals() {
        assert_eq!(Money::parse("5.00"), Ok(Money { cents: 500 }));
        assert_eq!(Money::parse("-0.5"), Ok(Money { cents: -50 }));
        assert_eq!(
            Money::parse("12").map(|m| m.to_string()),
            Ok("12.00".into())
        );
        assert!(Money::parse("5.001").is_err());
        assert!(Money::parse("five").is_err());
        assert!(Money::parse("5.").is_err());
        assert!(Money::parse("99999999999999999999").is_err());
        let mut v = minimal();
        v["template_customer"] = serde_json::json!({"payments": [{"amount": "0"}]});
        assert_eq!(refused_field(&v), "template_customer.payments[0].amount");
    }

    #[test]
    fn relay_mode_needs_an_upstream() {
        let mut v = minimal();
        v["sip"] = serde_json::json!({"registration": "relay"});
        assert_eq!(refused_field(&v), "sip.upstream");
    }

    #[test]
    fn not_json_is_a_syntax_error() {
        let err = TenantConfig::from_json(b"{\"domain\": ").unwrap_err();
        assert!(matches!(err, ConfigError::Syntax(_)), "{err:?}");
    }
}
