//! RFC 9457 problem details: the body of every HTTP error the platform returns.
//!
//! Served as `application/problem+json`. `detail` says what went wrong and what to fix; it never
//! carries a secret or data of another tenant.

use serde::{Deserialize, Serialize};

/// The media type of a [`Problem`] body.
pub const CONTENT_TYPE: &str = "application/problem+json";

/// An HTTP problem details object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// A URI naming the problem type; `about:blank` when the status says it all.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// A short summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What happened in this case, and what to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For validation errors: the field (a JSON path such as `menu[1].icon`) that was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Problem {
    /// A problem with the standard title for `status`.
    pub fn new(status: u16, detail: impl Into<String>) -> Self {
        Self {
            type_uri: "about:blank".to_owned(),
            title: title_for(status).to_owned(),
            status,
            detail: Some(detail.into()),
            field: None,
        }
    }

    /// Names the field a validation error is about.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The JSON body.
    pub fn to_json(&self) -> String {
        // Serializing a struct of strings and an integer cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The reason phrase used as a problem title.
pub fn title_for(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_serializes_with_type_title_status_and_field() {
        let p = Problem::new(400, "brand_name must not be empty").with_field("brand_name");
        let v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(v["type"], "about:blank");
        assert_eq!(v["title"], "Bad Request");
        assert_eq!(v["status"], 400);
        assert_eq!(v["field"], "brand_name");
    }
}
