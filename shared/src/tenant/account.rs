//! A tenant's local SIP accounts, as the operator API takes them.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `PUT /admin/tenants/{domain}/accounts/{username}`: sets an account's password (and name).
/// The password is turned into digest hashes at once and never stored or returned.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountInput {
    /// The SIP password, 8-128 characters.
    pub password: String,
    /// Shown to people this account calls.
    #[serde(default)]
    pub display_name: String,
}

impl std::fmt::Debug for AccountInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountInput")
            .field("password", &"<redacted>")
            .field("display_name", &self.display_name)
            .finish()
    }
}

/// An account as the operator API shows it: never a password or hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    /// The SIP username (`sip:USERNAME@domain`).
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// When it was created (UTC, RFC 3339).
    pub created_at: String,
}

impl AccountInput {
    /// Parses and validates the JSON body.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        let input: Self = serde_path_to_error::deserialize(de).map_err(ConfigError::from_serde)?;
        let chars = input.password.chars().count();
        if !(8..=128).contains(&chars) {
            return Err(ConfigError::Field {
                field: "password".into(),
                reason: "must be 8 to 128 characters".into(),
            });
        }
        if input.display_name.chars().count() > 64
            || input.display_name.chars().any(char::is_control)
        {
            return Err(ConfigError::Field {
                field: "display_name".into(),
                reason: "must be at most 64 characters, without control characters".into(),
            });
        }
        Ok(input)
    }
}

/// Checks a SIP username: 1-64 of letters, digits and `-_.!~+`, not starting with `*` or `#`
/// (those dial feature codes such as `*43`).
pub fn validate_username(username: &str) -> Result<(), ConfigError> {
    let ok = !username.is_empty()
        && username.len() <= 64
        && username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.!~+".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Field {
            field: "username".into(),
            reason: format!(
                "{username:?} is not a usable SIP username: use 1-64 letters, digits or -_.!~+ \
                 (feature codes like *43 are reserved)"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_password_is_refused_naming_the_field() {
        let err = AccountInput::from_json(br#"{"password":"short"}"#).unwrap_err();
        assert_eq!(err.field_path(), Some("password"));
    }

    #[test]
    fn password_never_shows_in_debug_output() {
        let input = AccountInput::from_json(br#"{"password":"correct horse battery"}"#).unwrap();
        assert!(!format!("{input:?}").contains("horse"));
    }

    #[test]
    fn feature_codes_and_odd_characters_are_not_usernames() {
        for bad in ["", "*43", "#1", "a b", "a@b", "1001;x", &"x".repeat(65)] {
            assert!(validate_username(bad).is_err(), "{bad:?}");
        }
        for good in ["1001", "alice", "alice.smith", "+15551234567"] {
            assert!(validate_username(good).is_ok(), "{good:?}");
        }
    }
}
