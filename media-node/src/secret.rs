//! A string that must never reach a log line, a response or `--check-config` output.

use std::fmt;

/// What a [`Secret`] looks like wherever it is shown.
pub const REDACTED: &str = "<redacted>";

/// A secret value (the fleet secret). `Debug`, `Display` and `Serialize` all print
/// [`REDACTED`]; only [`Secret::expose`] gives the value, for the code that authenticates.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself. Call only where it is compared or sent, never to log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

/// Deserializes from a string. Errors never quote the value (serde's default
/// "invalid type: integer `123`" would).
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(SecretVisitor)
    }
}

struct SecretVisitor;

impl SecretVisitor {
    fn not_a_string<E: serde::de::Error>() -> E {
        E::custom("expected a string (value not shown: it is a secret)")
    }
}

impl serde::de::Visitor<'_> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret::new(v))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Secret, E> {
        Err(Self::not_a_string())
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Secret, E> {
        Err(Self::not_a_string())
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Secret, E> {
        Err(Self::not_a_string())
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Secret, E> {
        Err(Self::not_a_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_display_and_serialize_never_show_the_value() {
        let secret = Secret::new("hunter2-hunter2-hunter2");
        let shown = [
            format!("{secret:?}"),
            format!("{secret}"),
            toml::to_string(&std::collections::BTreeMap::from([("s", &secret)])).unwrap(),
        ];
        for text in shown {
            assert!(!text.contains("hunter2"), "leaked in {text:?}");
            assert!(text.contains(REDACTED), "{text:?}");
        }
        assert_eq!(secret.expose(), "hunter2-hunter2-hunter2");
    }
}
