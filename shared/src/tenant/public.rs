//! The part of a tenant's configuration that browsers see.

use serde::{Deserialize, Serialize};

use super::config::{Flags, MenuItem, MenuPosition, Page, TenantConfig};

/// `GET /api/config`: what the phone needs to brand itself and connect. Leaves out the template
/// customer and the SIP upstream, which are the operator's business.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicConfig {
    /// Domain A; also the SIP domain users register to (`sip:<domain>`).
    pub domain: String,
    /// The product name.
    pub brand_name: String,
    /// Domain B.
    pub webrtc_host: String,
    /// The WebSocket URL to open for SIP (subprotocol `sip`).
    pub websocket_url: String,
    /// Enabled menu items, ordered left to right.
    pub menu: Vec<PublicMenuItem>,
    /// Feature switches.
    pub flags: Flags,
    /// Shown after a successful sign-up.
    pub register_success_html: String,
    /// The deploy and version id of the running Worker (shown in the side menu unless `hide_uuid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

/// A visible menu item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicMenuItem {
    /// Label.
    pub title: String,
    /// Material Design Icons name, always with the `mdi-` prefix.
    pub icon: String,
    /// Slot, 1 = far left.
    pub position: u8,
    /// The built-in page it opens, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<Page>,
    /// Custom page HTML, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Show the template without the page frame.
    pub frameless: bool,
}

impl PublicConfig {
    /// The public view of `tenant`, with the WebSocket URL built from the scheme and port the
    /// browser used (`wss`/`ws`; a non-default port is kept so the local stack works).
    pub fn of(tenant: &TenantConfig, secure: bool, port: Option<u16>) -> Self {
        let scheme = if secure { "wss" } else { "ws" };
        let host = tenant.webrtc_host.as_str();
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        let websocket_url = match port {
            Some(p) if p != if secure { 443 } else { 80 } => format!("{scheme}://{host}:{p}/ws"),
            _ => format!("{scheme}://{host}/ws"),
        };
        let mut menu: Vec<PublicMenuItem> = tenant
            .menu
            .iter()
            .filter_map(|item| match item.position {
                MenuPosition::Disabled => None,
                MenuPosition::Slot(position) => Some(public_item(item, position)),
            })
            .collect();
        menu.sort_by_key(|i| i.position);
        Self {
            domain: tenant.domain.to_string(),
            brand_name: tenant.brand_name.clone(),
            webrtc_host: tenant.webrtc_host.to_string(),
            websocket_url,
            menu,
            flags: tenant.flags,
            register_success_html: tenant.register_success_html.clone(),
            version_id: None,
        }
    }
}

fn public_item(item: &MenuItem, position: u8) -> PublicMenuItem {
    let icon = if item.icon.starts_with("mdi-") {
        item.icon.clone()
    } else {
        format!("mdi-{}", item.icon)
    };
    PublicMenuItem {
        title: item.title.clone(),
        icon,
        position,
        page: item.page,
        template: item.template.clone(),
        frameless: item.frameless(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_config_hides_operator_fields_and_disabled_items() {
        let tenant = TenantConfig::from_json(
            serde_json::json!({
                "domain": "localhost", "brand_name": "Demo", "webrtc_host": "127.0.0.1",
                "template_customer": {"routes": ["secret-route"]},
                "sip": {"upstream": {"host": "pbx.internal.example", "port": 5080}},
                "menu": [
                    {"title": "B", "icon": "cog", "position": 2, "page": "settings"},
                    {"title": "A", "icon": "mdi-dialpad", "position": 1, "page": "dialpad"},
                    {"title": "Hidden", "icon": "eye-off", "position": "disabled", "template": "<p>x</p>"}
                ]
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        let public = PublicConfig::of(&tenant, false, Some(8787));
        let json = serde_json::to_string(&public).unwrap();
        assert!(
            !json.contains("secret-route") && !json.contains("pbx.internal"),
            "{json}"
        );
        assert_eq!(public.websocket_url, "ws://127.0.0.1:8787/ws");
        let titles: Vec<_> = public.menu.iter().map(|m| m.title.as_str()).collect();
        assert_eq!(titles, ["A", "B"]);
        assert_eq!(public.menu[1].icon, "mdi-cog");
    }

    #[test]
    fn websocket_url_on_default_https_port_has_no_port() {
        let tenant = TenantConfig::from_json(
            br#"{"domain":"phone.example.com","brand_name":"P","webrtc_host":"sip.example.com"}"#,
        )
        .unwrap();
        assert_eq!(
            PublicConfig::of(&tenant, true, None).websocket_url,
            "wss://sip.example.com/ws"
        );
        assert_eq!(
            PublicConfig::of(&tenant, true, Some(443)).websocket_url,
            "wss://sip.example.com/ws"
        );
    }
}
