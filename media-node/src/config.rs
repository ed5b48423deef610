//! Configuration: built-in defaults, then a TOML file, then `MEDIA_NODE_*` environment
//! variables (and `RUST_LOG`), then command-line flags; each layer overrides the one before.
//!
//! Every layer is an [`Overrides`] (all fields optional). [`Config::load`] stacks them on
//! [`Config::default`] and validates the result, reporting every problem at once, each naming the
//! key and the three places it can be set.

use std::ffi::OsString;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::secret::Secret;

/// Prefix of the environment variables that override config keys (`MEDIA_NODE_<KEY>`).
pub const ENV_PREFIX: &str = "MEDIA_NODE_";

/// Environment variable naming the config file (same as `--config`; read by clap).
pub const ENV_CONFIG: &str = "MEDIA_NODE_CONFIG";

/// Every config key, in the order the example file and `--check-config` show them.
pub const KEYS: &[&str] = &[
    "id",
    "region",
    "control_listen",
    "control_url",
    "control_tls_cert",
    "control_tls_key",
    "metrics_listen",
    "media_listen",
    "rtp_port_min",
    "rtp_port_max",
    "public_ip",
    "capacity",
    "fleet_secret",
    "report_url",
    "report_transport",
    "report_interval_secs",
    "report_ca_file",
    "drain_timeout_secs",
    "media_timeout_secs",
    "batch_wait_us",
    "media_socket_buffer_bytes",
    "log_format",
    "log_filter",
];

/// Upper bound for `capacity`: far above what one machine bridges, low enough to catch typos.
const MAX_CAPACITY: u32 = 100_000;
/// Bounds of `media_timeout_secs`.
const MEDIA_TIMEOUT_SECS: std::ops::RangeInclusive<u64> = 5..=3_600;
/// Bounds of `batch_wait_us` (0: no wait).
const BATCH_WAIT_US: std::ops::RangeInclusive<u64> = 0..=5_000;
/// Bounds of `media_socket_buffer_bytes`.
const MEDIA_SOCKET_BUFFER_BYTES: std::ops::RangeInclusive<u64> = 65_536..=268_435_456;
/// Bounds of `report_interval_secs`.
const REPORT_INTERVAL_SECS: std::ops::RangeInclusive<u64> = 1..=3_600;
/// Upper bound for `drain_timeout_secs` (one hour).
const MAX_DRAIN_TIMEOUT_SECS: u64 = 3_600;
/// RTP ports per bridged call on the upstream side: RTP and RTCP (plain RTP/AVP peers often
/// do not multiplex RTCP).
const RTP_PORTS_PER_CALL: u32 = 2;
/// Shortest accepted fleet secret.
const MIN_SECRET_LEN: usize = 16;

/// The environment variable that sets `key`.
pub fn env_var_for(key: &str) -> String {
    match key {
        "log_filter" => "RUST_LOG".to_owned(),
        _ => format!("{ENV_PREFIX}{}", key.to_ascii_uppercase()),
    }
}

/// The command-line flag that sets `key`, if any (the fleet secret has none: command lines
/// are visible to every user of the machine).
pub fn flag_for(key: &str) -> Option<String> {
    match key {
        "fleet_secret" => None,
        _ => Some(format!("--{}", key.replace('_', "-"))),
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (colours only on a terminal).
    #[default]
    Text,
    /// One JSON object per line, event fields at the top level.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(format!(
                "{s:?} is not a log format; expected \"text\" or \"json\""
            )),
        }
    }
}

/// How reports travel to the control plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ReportTransport {
    /// HTTP/3 first; HTTPS (TCP) when UDP is blocked, retrying HTTP/3 later (as browsers do).
    #[default]
    Auto,
    /// HTTP/3 only.
    H3,
    /// HTTPS over TCP only (plain HTTP for an `http://` URL).
    Https,
}

impl FromStr for ReportTransport {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "h3" => Ok(Self::H3),
            "https" => Ok(Self::Https),
            _ => Err(format!(
                "{s:?} is not a report transport; expected \"auto\", \"h3\" or \"https\""
            )),
        }
    }
}

/// The effective, validated configuration of a node.
///
/// `Serialize` renders it as the config file would be written (`fleet_secret` shows as
/// `<redacted>`); `Debug` redacts the secret too.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// Node id, unique in the fleet (shown by `GET /admin/fleet`).
    pub id: String,
    /// Region the node serves (the worker picks nodes by region).
    pub region: String,
    /// TCP address of the control API (`/healthz` now; allocate/update/release later).
    pub control_listen: SocketAddr,
    /// URL the worker reaches the control API at, sent in reports; `None` = `https://` (with
    /// TLS; `http://` without) and the bound control address (with `public_ip` for a wildcard
    /// IP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_url: Option<String>,
    /// PEM certificate chain (leaf first) of the control API; with `control_tls_key`, the
    /// control API serves HTTPS. Required when `control_listen` is not loopback.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_tls_cert: Option<PathBuf>,
    /// PEM private key of `control_tls_cert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_tls_key: Option<PathBuf>,
    /// TCP address serving Prometheus `GET /metrics` (`None`: no metrics endpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
    /// UDP address of the one multiplexed port browsers send ICE/DTLS/SRTP to.
    pub media_listen: SocketAddr,
    /// Lowest UDP port for plain RTP/RTCP with the upstream.
    pub rtp_port_min: u16,
    /// Highest UDP port for plain RTP/RTCP with the upstream.
    pub rtp_port_max: u16,
    /// Address put in ICE candidates and SDP; `None` = the IP of `media_listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<IpAddr>,
    /// Concurrent calls the node accepts (reported to the control plane).
    pub capacity: u32,
    /// Shared secret authenticating the worker's control calls and the node's reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet_secret: Option<Secret>,
    /// Control-plane URL the node reports health and load to (`None`: no reports).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_url: Option<String>,
    /// How reports travel: HTTP/3 with HTTPS fallback, or one of them only.
    pub report_transport: ReportTransport,
    /// Seconds between reports.
    pub report_interval_secs: u64,
    /// Extra trusted root certificate (PEM or DER) for reports, e.g. the dev h3-gateway's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report_ca_file: Option<PathBuf>,
    /// How long a shutdown waits for in-flight work before exiting anyway.
    pub drain_timeout_secs: u64,
    /// A call that receives nothing (no RTP, RTCP or ICE check from either side) for this long
    /// is released, and so is one whose browser, once heard from, has been silent this long.
    pub media_timeout_secs: u64,
    /// After a wakeup that moved packets, the media thread waits until this many microseconds
    /// have passed since it woke before it looks again, so each wakeup handles a batch (fewer
    /// system calls and context switches per packet, at most this much added latency).
    pub batch_wait_us: u64,
    /// Receive and send buffer asked for the multiplexed media socket, which every browser of
    /// the node shares (the kernel caps it at `net.core.rmem_max`/`wmem_max` unless the node
    /// may override them).
    pub media_socket_buffer_bytes: u64,
    /// Log output format.
    pub log_format: LogFormat,
    /// `tracing` filter directives, `RUST_LOG` syntax.
    pub log_filter: String,
}

impl Default for Config {
    /// Loopback-only defaults: a node that runs on a laptop with no config at all.
    fn default() -> Self {
        Self {
            id: "media-node".to_owned(),
            region: "local".to_owned(),
            control_listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            control_url: None,
            control_tls_cert: None,
            control_tls_key: None,
            metrics_listen: None,
            media_listen: SocketAddr::from(([127, 0, 0, 1], 3478)),
            rtp_port_min: 40_000,
            rtp_port_max: 49_999,
            public_ip: None,
            capacity: 100,
            fleet_secret: None,
            report_url: None,
            report_transport: ReportTransport::Auto,
            report_interval_secs: 5,
            report_ca_file: None,
            drain_timeout_secs: 30,
            media_timeout_secs: 60,
            batch_wait_us: 500,
            media_socket_buffer_bytes: 4 * 1024 * 1024,
            log_format: LogFormat::Text,
            log_filter: "info".to_owned(),
        }
    }
}

impl Config {
    /// Loads the configuration: defaults, then the file at `config_path` (if any), then the
    /// `MEDIA_NODE_*` / `RUST_LOG` variables in `env`, then `cli`; then validates it.
    pub fn load(
        config_path: Option<&Path>,
        env: impl IntoIterator<Item = (OsString, OsString)>,
        cli: Overrides,
    ) -> Result<Self, ConfigError> {
        let file = match config_path {
            Some(path) => Overrides::from_file(path)?,
            None => Overrides::default(),
        };
        let env = Overrides::from_env(env)?;
        Self::from_layers([file, env, cli])
    }

    /// Applies `layers` (lowest precedence first) to the defaults and validates the result.
    pub fn from_layers(layers: impl IntoIterator<Item = Overrides>) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        for layer in layers {
            layer.apply_to(&mut config);
        }
        config.validate()?;
        Ok(config)
    }

    /// The address advertised to peers: `public_ip`, else the IP of `media_listen`.
    pub fn advertised_ip(&self) -> IpAddr {
        self.public_ip.unwrap_or(self.media_listen.ip())
    }

    /// How long a shutdown may drain.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_secs(self.drain_timeout_secs)
    }

    /// Time between reports.
    pub fn report_interval(&self) -> Duration {
        Duration::from_secs(self.report_interval_secs)
    }

    /// Whether the control API serves HTTPS (`control_tls_cert` and `control_tls_key` set).
    pub fn control_tls(&self) -> bool {
        self.control_tls_cert.is_some() && self.control_tls_key.is_some()
    }

    /// The control API's URL scheme: `"https"` with TLS, else `"http"`.
    pub fn control_scheme(&self) -> &'static str {
        if self.control_tls() {
            "https"
        } else {
            "http"
        }
    }

    /// The control URL put in reports: `control_url`, else `https://` (`http://` without TLS)
    /// and `bound` (the actual control address), its IP replaced by the advertised one when it
    /// is a wildcard.
    pub fn effective_control_url(&self, bound: SocketAddr) -> String {
        if let Some(url) = &self.control_url {
            return url.clone();
        }
        let mut addr = bound;
        if addr.ip().is_unspecified() {
            addr.set_ip(self.advertised_ip());
        }
        format!("{}://{addr}", self.control_scheme())
    }

    /// How long a call may go without media before it is released.
    pub fn media_timeout(&self) -> Duration {
        Duration::from_secs(self.media_timeout_secs)
    }

    /// `batch_wait_us` as a duration.
    pub fn batch_wait(&self) -> Duration {
        Duration::from_micros(self.batch_wait_us)
    }

    /// The configuration as TOML, secret redacted (what `--check-config` prints).
    pub fn to_toml(&self) -> String {
        match toml::to_string(self) {
            Ok(body) => format!("# effective media-node configuration (secrets redacted)\n{body}"),
            Err(e) => format!("# cannot render the configuration as TOML: {e}\n{self:#?}\n"),
        }
    }

    /// Checks that the values make a working node; lists every problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut problem =
            |key: &'static str, text: String| problems.push(FieldError { key, problem: text });

        if let Some(p) = name_problem(&self.id) {
            problem("id", p);
        }
        if let Some(p) = name_problem(&self.region) {
            problem("region", p);
        }
        if self.rtp_port_min < 1024 {
            problem(
                "rtp_port_min",
                format!(
                    "{} is a privileged port; use 1024 or above",
                    self.rtp_port_min
                ),
            );
        }
        if self.rtp_port_min > self.rtp_port_max {
            problem(
                "rtp_port_min",
                format!(
                    "rtp_port_min ({}) is greater than rtp_port_max ({}); the range is \
                     rtp_port_min..=rtp_port_max, so swap or widen them",
                    self.rtp_port_min, self.rtp_port_max
                ),
            );
        } else {
            let ports = u32::from(self.rtp_port_max) - u32::from(self.rtp_port_min) + 1;
            if ports < self.capacity.saturating_mul(RTP_PORTS_PER_CALL) {
                problem(
                    "capacity",
                    format!(
                        "capacity {} needs {} RTP ports ({RTP_PORTS_PER_CALL} per call) but \
                         rtp_port_min..=rtp_port_max ({}..={}) has {ports}; widen the range or \
                         lower capacity",
                        self.capacity,
                        self.capacity.saturating_mul(RTP_PORTS_PER_CALL),
                        self.rtp_port_min,
                        self.rtp_port_max
                    ),
                );
            }
        }
        let media_port = self.media_listen.port();
        if (self.rtp_port_min..=self.rtp_port_max).contains(&media_port) {
            problem(
                "media_listen",
                format!(
                    "port {media_port} lies inside the RTP range {}..={}; pick a port outside it",
                    self.rtp_port_min, self.rtp_port_max
                ),
            );
        }
        match self.public_ip {
            Some(ip) if ip.is_unspecified() || ip.is_multicast() => problem(
                "public_ip",
                format!(
                    "{ip} cannot be advertised; give the unicast address peers reach this node at"
                ),
            ),
            None if self.media_listen.ip().is_unspecified() => problem(
                "public_ip",
                format!(
                    "required when media_listen ({}) is a wildcard address: set it to the \
                     address browsers and the upstream reach this node at",
                    self.media_listen
                ),
            ),
            _ => {}
        }
        if self.capacity == 0 || self.capacity > MAX_CAPACITY {
            problem(
                "capacity",
                format!("{} is out of range; use 1 to {MAX_CAPACITY}", self.capacity),
            );
        }
        match &self.fleet_secret {
            Some(secret) if secret.expose().chars().count() < MIN_SECRET_LEN => problem(
                "fleet_secret",
                format!("too short; use at least {MIN_SECRET_LEN} characters (e.g. `openssl rand -hex 32`)"),
            ),
            None if !self.control_listen.ip().is_loopback() => problem(
                "fleet_secret",
                format!(
                    "required when control_listen ({}) is not a loopback address, or the \
                     control API would be open to anyone",
                    self.control_listen
                ),
            ),
            _ => {}
        }
        match (&self.control_tls_cert, &self.control_tls_key) {
            (Some(cert), Some(key)) => {
                if let Err(e) = crate::control_tls::server_config(cert, key) {
                    problem(e.key, e.reason);
                }
            }
            (Some(_), None) => problem(
                "control_tls_key",
                "control_tls_cert is set but control_tls_key is not; set both (the PEM \
                 certificate and its private key) or neither"
                    .to_owned(),
            ),
            (None, Some(_)) => problem(
                "control_tls_cert",
                "control_tls_key is set but control_tls_cert is not; set both (the PEM \
                 certificate and its private key) or neither"
                    .to_owned(),
            ),
            (None, None) if !self.control_listen.ip().is_loopback() => problem(
                "control_tls_cert",
                format!(
                    "required when control_listen ({}) is not a loopback address: set \
                     control_tls_cert and control_tls_key (PEM certificate and private key) so \
                     the control API serves HTTPS; plain HTTP is for loopback only",
                    self.control_listen
                ),
            ),
            (None, None) => {}
        }
        if let Some(url) = &self.control_url {
            if let Some(p) = url_problem(url) {
                problem("control_url", p);
            }
        }
        if let Some(url) = &self.report_url {
            if let Some(p) = url_problem(url) {
                problem("report_url", p);
            } else if self.fleet_secret.is_none() {
                problem(
                    "report_url",
                    "reports are signed with fleet_secret, which is not set; set \
                     MEDIA_NODE_FLEET_SECRET (or fleet_secret in the file) or unset report_url"
                        .to_owned(),
                );
            }
        }
        if !REPORT_INTERVAL_SECS.contains(&self.report_interval_secs) {
            problem(
                "report_interval_secs",
                format!(
                    "{} is out of range; use {} to {} seconds",
                    self.report_interval_secs,
                    REPORT_INTERVAL_SECS.start(),
                    REPORT_INTERVAL_SECS.end()
                ),
            );
        }
        if !BATCH_WAIT_US.contains(&self.batch_wait_us) {
            problem(
                "batch_wait_us",
                format!(
                    "{} is out of range; use {} to {} microseconds (0 turns batching waits off)",
                    self.batch_wait_us,
                    BATCH_WAIT_US.start(),
                    BATCH_WAIT_US.end()
                ),
            );
        }
        if !MEDIA_SOCKET_BUFFER_BYTES.contains(&self.media_socket_buffer_bytes) {
            problem(
                "media_socket_buffer_bytes",
                format!(
                    "{} is out of range; use {} to {} bytes",
                    self.media_socket_buffer_bytes,
                    MEDIA_SOCKET_BUFFER_BYTES.start(),
                    MEDIA_SOCKET_BUFFER_BYTES.end()
                ),
            );
        }
        if !MEDIA_TIMEOUT_SECS.contains(&self.media_timeout_secs) {
            problem(
                "media_timeout_secs",
                format!(
                    "{} is out of range; use {} to {} seconds",
                    self.media_timeout_secs,
                    MEDIA_TIMEOUT_SECS.start(),
                    MEDIA_TIMEOUT_SECS.end()
                ),
            );
        }
        if self.drain_timeout_secs > MAX_DRAIN_TIMEOUT_SECS {
            problem(
                "drain_timeout_secs",
                format!(
                    "{} is too long; use 0 to {MAX_DRAIN_TIMEOUT_SECS} seconds",
                    self.drain_timeout_secs
                ),
            );
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log_filter) {
            problem(
                "log_filter",
                format!(
                    "{:?} is not a valid filter ({e}); e.g. \"info\" or \"media_node=debug\"",
                    self.log_filter
                ),
            );
        }

        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}

/// `None` if `value` is a usable id/region: 1-64 of `A-Z a-z 0-9 . _ -`.
fn name_problem(value: &str) -> Option<String> {
    if value.is_empty() || value.len() > 64 {
        return Some(format!("{value:?} must be 1 to 64 characters long"));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Some(format!(
            "{value:?} contains {bad:?}; use only letters, digits, '.', '_' and '-'"
        ));
    }
    None
}

/// `None` if `url` is an absolute `https://` (or `http://`) URL with a host.
fn url_problem(url: &str) -> Option<String> {
    let parsed = match url.parse::<http::Uri>() {
        Ok(uri) => uri,
        Err(e) => return Some(format!("{url:?} is not a URL ({e})")),
    };
    match (parsed.scheme_str(), parsed.host()) {
        (Some("https" | "http"), Some(host)) if !host.is_empty() => None,
        _ => Some(format!(
            "{url:?} must be an absolute https:// URL such as \"https://fleet.example.com/report\""
        )),
    }
}

/// Parses `IP:PORT` (no name resolution). Used for the file, the environment and the flags.
pub fn parse_socket_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| {
        format!(
            "{s:?} is not a socket address; expected IP:PORT such as 127.0.0.1:9090 or \
             [::1]:9090 (host names are not resolved)"
        )
    })
}

/// Parses an IPv4 or IPv6 address (no name resolution).
pub fn parse_ip(s: &str) -> Result<IpAddr, String> {
    s.parse().map_err(|_| {
        format!("{s:?} is not an IP address; expected e.g. 203.0.113.7 or 2001:db8::7")
    })
}

fn parse_number<T: FromStr>(s: &str, what: &str) -> Result<T, String>
where
    T::Err: fmt::Display,
{
    s.trim()
        .parse()
        .map_err(|e| format!("{s:?} is not {what} ({e})"))
}

/// One configuration layer: every key optional, `None` = not set here.
///
/// It is also the set of command-line flags (`clap` flattens it into the CLI); the fleet secret
/// has no flag.
#[derive(Debug, Clone, Default, PartialEq, clap::Args)]
pub struct Overrides {
    /// Node id, unique in the fleet [env MEDIA_NODE_ID; key `id`]
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// Region this node serves [env MEDIA_NODE_REGION; key `region`]
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// TCP address of the control API, e.g. 127.0.0.1:9090 (port 0 = any free port)
    /// [env MEDIA_NODE_CONTROL_LISTEN; key `control_listen`]
    #[arg(long, value_name = "IP:PORT", value_parser = parse_socket_addr)]
    pub control_listen: Option<SocketAddr>,
    /// URL the worker reaches the control API at, sent in reports (default: https:// with
    /// TLS, else http://, and the bound control address) [env MEDIA_NODE_CONTROL_URL; key
    /// `control_url`]
    #[arg(long, value_name = "URL")]
    pub control_url: Option<String>,
    /// PEM certificate chain of the control API; with --control-tls-key it serves HTTPS
    /// (required when control_listen is not loopback) [env MEDIA_NODE_CONTROL_TLS_CERT; key
    /// `control_tls_cert`]
    #[arg(long, value_name = "PATH")]
    pub control_tls_cert: Option<PathBuf>,
    /// PEM private key of the control API's certificate [env MEDIA_NODE_CONTROL_TLS_KEY; key
    /// `control_tls_key`]
    #[arg(long, value_name = "PATH")]
    pub control_tls_key: Option<PathBuf>,
    /// TCP address serving Prometheus metrics at GET /metrics, e.g. 127.0.0.1:9100 (port 0 =
    /// any free port; default: off) [env MEDIA_NODE_METRICS_LISTEN; key `metrics_listen`]
    #[arg(long, value_name = "IP:PORT", value_parser = parse_socket_addr)]
    pub metrics_listen: Option<SocketAddr>,
    /// UDP address of the multiplexed WebRTC media port, e.g. 0.0.0.0:3478 (port 0 = any free
    /// port) [env MEDIA_NODE_MEDIA_LISTEN; key `media_listen`]
    #[arg(long, value_name = "IP:PORT", value_parser = parse_socket_addr)]
    pub media_listen: Option<SocketAddr>,
    /// Lowest UDP port for plain RTP with the upstream [env MEDIA_NODE_RTP_PORT_MIN; key
    /// `rtp_port_min`]
    #[arg(long, value_name = "PORT")]
    pub rtp_port_min: Option<u16>,
    /// Highest UDP port for plain RTP with the upstream [env MEDIA_NODE_RTP_PORT_MAX; key
    /// `rtp_port_max`]
    #[arg(long, value_name = "PORT")]
    pub rtp_port_max: Option<u16>,
    /// Address advertised in ICE candidates and SDP (default: the media_listen IP)
    /// [env MEDIA_NODE_PUBLIC_IP; key `public_ip`]
    #[arg(long, value_name = "IP", value_parser = parse_ip)]
    pub public_ip: Option<IpAddr>,
    /// Concurrent calls this node accepts [env MEDIA_NODE_CAPACITY; key `capacity`]
    #[arg(long, value_name = "CALLS")]
    pub capacity: Option<u32>,
    /// Shared fleet secret: environment (MEDIA_NODE_FLEET_SECRET) or file only, never a flag.
    #[arg(skip)]
    pub fleet_secret: Option<Secret>,
    /// Control-plane URL for health/load reports [env MEDIA_NODE_REPORT_URL; key `report_url`]
    #[arg(long, value_name = "URL")]
    pub report_url: Option<String>,
    /// How reports travel: auto (HTTP/3, HTTPS fallback), h3 or https
    /// [env MEDIA_NODE_REPORT_TRANSPORT; key `report_transport`]
    #[arg(long, value_enum, value_name = "TRANSPORT")]
    pub report_transport: Option<ReportTransport>,
    /// Seconds between reports [env MEDIA_NODE_REPORT_INTERVAL_SECS; key
    /// `report_interval_secs`]
    #[arg(long, value_name = "SECS")]
    pub report_interval_secs: Option<u64>,
    /// Extra trusted root certificate (PEM or DER file) for reports, e.g. the dev
    /// h3-gateway's [env MEDIA_NODE_REPORT_CA_FILE; key `report_ca_file`]
    #[arg(long, value_name = "PATH")]
    pub report_ca_file: Option<PathBuf>,
    /// Seconds a shutdown waits for in-flight work [env MEDIA_NODE_DRAIN_TIMEOUT_SECS; key
    /// `drain_timeout_secs`]
    #[arg(long, value_name = "SECS")]
    pub drain_timeout_secs: Option<u64>,
    /// Seconds without any media before a call is released [env MEDIA_NODE_MEDIA_TIMEOUT_SECS;
    /// key `media_timeout_secs`]
    #[arg(long, value_name = "SECS")]
    pub media_timeout_secs: Option<u64>,
    /// Microseconds a wakeup of the media thread lasts at least, so packets are handled in
    /// batches; 0 turns it off [env MEDIA_NODE_BATCH_WAIT_US; key `batch_wait_us`]
    #[arg(long, value_name = "MICROS")]
    pub batch_wait_us: Option<u64>,
    /// Receive/send buffer of the shared media socket, in bytes [env
    /// MEDIA_NODE_MEDIA_SOCKET_BUFFER_BYTES; key `media_socket_buffer_bytes`]
    #[arg(long, value_name = "BYTES")]
    pub media_socket_buffer_bytes: Option<u64>,
    /// Log format [env MEDIA_NODE_LOG_FORMAT; key `log_format`]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log filter in RUST_LOG syntax, e.g. "info,media_node=debug" [env RUST_LOG; key
    /// `log_filter`]
    #[arg(long, value_name = "FILTER")]
    pub log_filter: Option<String>,
}

/// The TOML file's schema. Addresses are strings here so that a bad one gets the same message
/// as from the environment or a flag.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    id: Option<String>,
    region: Option<String>,
    control_listen: Option<String>,
    control_url: Option<String>,
    control_tls_cert: Option<PathBuf>,
    control_tls_key: Option<PathBuf>,
    metrics_listen: Option<String>,
    media_listen: Option<String>,
    rtp_port_min: Option<u16>,
    rtp_port_max: Option<u16>,
    public_ip: Option<String>,
    capacity: Option<u32>,
    fleet_secret: Option<Secret>,
    report_url: Option<String>,
    report_transport: Option<String>,
    report_interval_secs: Option<u64>,
    report_ca_file: Option<PathBuf>,
    drain_timeout_secs: Option<u64>,
    media_timeout_secs: Option<u64>,
    batch_wait_us: Option<u64>,
    media_socket_buffer_bytes: Option<u64>,
    log_format: Option<String>,
    log_filter: Option<String>,
}

impl Overrides {
    /// This layer on top of `lower`: keys set here win.
    pub fn over(self, lower: Self) -> Self {
        Self {
            id: self.id.or(lower.id),
            region: self.region.or(lower.region),
            control_listen: self.control_listen.or(lower.control_listen),
            control_url: self.control_url.or(lower.control_url),
            control_tls_cert: self.control_tls_cert.or(lower.control_tls_cert),
            control_tls_key: self.control_tls_key.or(lower.control_tls_key),
            metrics_listen: self.metrics_listen.or(lower.metrics_listen),
            media_listen: self.media_listen.or(lower.media_listen),
            rtp_port_min: self.rtp_port_min.or(lower.rtp_port_min),
            rtp_port_max: self.rtp_port_max.or(lower.rtp_port_max),
            public_ip: self.public_ip.or(lower.public_ip),
            capacity: self.capacity.or(lower.capacity),
            fleet_secret: self.fleet_secret.or(lower.fleet_secret),
            report_url: self.report_url.or(lower.report_url),
            report_transport: self.report_transport.or(lower.report_transport),
            report_interval_secs: self.report_interval_secs.or(lower.report_interval_secs),
            report_ca_file: self.report_ca_file.or(lower.report_ca_file),
            drain_timeout_secs: self.drain_timeout_secs.or(lower.drain_timeout_secs),
            media_timeout_secs: self.media_timeout_secs.or(lower.media_timeout_secs),
            batch_wait_us: self.batch_wait_us.or(lower.batch_wait_us),
            media_socket_buffer_bytes: self
                .media_socket_buffer_bytes
                .or(lower.media_socket_buffer_bytes),
            log_format: self.log_format.or(lower.log_format),
            log_filter: self.log_filter.or(lower.log_filter),
        }
    }

    /// Writes the keys set in this layer into `config`.
    pub fn apply_to(self, config: &mut Config) {
        let Self {
            id,
            region,
            control_listen,
            control_url,
            control_tls_cert,
            control_tls_key,
            metrics_listen,
            media_listen,
            rtp_port_min,
            rtp_port_max,
            public_ip,
            capacity,
            fleet_secret,
            report_url,
            report_transport,
            report_interval_secs,
            report_ca_file,
            drain_timeout_secs,
            media_timeout_secs,
            batch_wait_us,
            media_socket_buffer_bytes,
            log_format,
            log_filter,
        } = self;
        set(&mut config.id, id);
        set(&mut config.region, region);
        set(&mut config.control_listen, control_listen);
        set(&mut config.media_listen, media_listen);
        set(&mut config.rtp_port_min, rtp_port_min);
        set(&mut config.rtp_port_max, rtp_port_max);
        set(&mut config.capacity, capacity);
        set(&mut config.report_transport, report_transport);
        set(&mut config.report_interval_secs, report_interval_secs);
        set(&mut config.drain_timeout_secs, drain_timeout_secs);
        set(&mut config.media_timeout_secs, media_timeout_secs);
        set(&mut config.batch_wait_us, batch_wait_us);
        set(
            &mut config.media_socket_buffer_bytes,
            media_socket_buffer_bytes,
        );
        set(&mut config.log_format, log_format);
        set(&mut config.log_filter, log_filter);
        if public_ip.is_some() {
            config.public_ip = public_ip;
        }
        if fleet_secret.is_some() {
            config.fleet_secret = fleet_secret;
        }
        if report_url.is_some() {
            config.report_url = report_url;
        }
        if control_url.is_some() {
            config.control_url = control_url;
        }
        if metrics_listen.is_some() {
            config.metrics_listen = metrics_listen;
        }
        if report_ca_file.is_some() {
            config.report_ca_file = report_ca_file;
        }
        if control_tls_cert.is_some() {
            config.control_tls_cert = control_tls_cert;
        }
        if control_tls_key.is_some() {
            config.control_tls_key = control_tls_key;
        }
    }

    /// Reads a TOML config file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|message| ConfigError::File {
            path: path.to_owned(),
            message,
        })
    }

    /// Parses TOML config text. The error says where and what; it never quotes the source
    /// (the line could hold the fleet secret).
    pub fn from_toml(text: &str) -> Result<Self, String> {
        let file: FileConfig = toml::from_str(text).map_err(|e| describe_toml_error(text, &e))?;
        let addr = |key: &str, v: Option<String>| {
            v.map(|s| parse_socket_addr(&s).map_err(|p| format!("{key}: {p}")))
                .transpose()
        };
        Ok(Self {
            id: file.id,
            region: file.region,
            control_listen: addr("control_listen", file.control_listen)?,
            control_url: file.control_url,
            control_tls_cert: file.control_tls_cert,
            control_tls_key: file.control_tls_key,
            metrics_listen: addr("metrics_listen", file.metrics_listen)?,
            media_listen: addr("media_listen", file.media_listen)?,
            rtp_port_min: file.rtp_port_min,
            rtp_port_max: file.rtp_port_max,
            public_ip: file
                .public_ip
                .map(|s| parse_ip(&s).map_err(|p| format!("public_ip: {p}")))
                .transpose()?,
            capacity: file.capacity,
            fleet_secret: file.fleet_secret,
            report_url: file.report_url,
            report_transport: file
                .report_transport
                .map(|s| s.parse().map_err(|p| format!("report_transport: {p}")))
                .transpose()?,
            report_interval_secs: file.report_interval_secs,
            report_ca_file: file.report_ca_file,
            drain_timeout_secs: file.drain_timeout_secs,
            media_timeout_secs: file.media_timeout_secs,
            batch_wait_us: file.batch_wait_us,
            media_socket_buffer_bytes: file.media_socket_buffer_bytes,
            log_format: file
                .log_format
                .map(|s| s.parse().map_err(|p| format!("log_format: {p}")))
                .transpose()?,
            log_filter: file.log_filter,
        })
    }

    /// Reads `MEDIA_NODE_*` and `RUST_LOG` from `vars` (e.g. [`std::env::vars_os`]). Other
    /// variables are ignored; an unknown `MEDIA_NODE_*` one is an error (a typo would otherwise
    /// be silently ignored). An empty value counts as unset.
    pub fn from_env(
        vars: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<Self, ConfigError> {
        let mut layer = Self::default();
        for (name, value) in vars {
            let Some(name) = name.to_str() else { continue };
            let key = if name == "RUST_LOG" {
                "log_filter".to_owned()
            } else if let Some(suffix) = name.strip_prefix(ENV_PREFIX) {
                suffix.to_ascii_lowercase()
            } else {
                continue;
            };
            if name == ENV_CONFIG || value.is_empty() {
                continue;
            }
            let env_error = |problem: String| ConfigError::Env {
                var: name.to_owned(),
                problem,
            };
            let Some(value) = value.to_str() else {
                return Err(env_error("is not valid UTF-8".to_owned()));
            };
            match key.as_str() {
                "id" => layer.id = Some(value.to_owned()),
                "region" => layer.region = Some(value.to_owned()),
                "control_listen" => {
                    layer.control_listen = Some(parse_socket_addr(value).map_err(env_error)?)
                }
                "media_listen" => {
                    layer.media_listen = Some(parse_socket_addr(value).map_err(env_error)?)
                }
                "metrics_listen" => {
                    layer.metrics_listen = Some(parse_socket_addr(value).map_err(env_error)?)
                }
                "rtp_port_min" => {
                    layer.rtp_port_min =
                        Some(parse_number(value, "a port number 0-65535").map_err(env_error)?)
                }
                "rtp_port_max" => {
                    layer.rtp_port_max =
                        Some(parse_number(value, "a port number 0-65535").map_err(env_error)?)
                }
                "public_ip" => layer.public_ip = Some(parse_ip(value).map_err(env_error)?),
                "capacity" => {
                    layer.capacity =
                        Some(parse_number(value, "a number of calls").map_err(env_error)?)
                }
                "fleet_secret" => layer.fleet_secret = Some(Secret::new(value)),
                "report_url" => layer.report_url = Some(value.to_owned()),
                "control_url" => layer.control_url = Some(value.to_owned()),
                "control_tls_cert" => layer.control_tls_cert = Some(PathBuf::from(value)),
                "control_tls_key" => layer.control_tls_key = Some(PathBuf::from(value)),
                "report_transport" => {
                    layer.report_transport = Some(value.parse().map_err(env_error)?)
                }
                "report_interval_secs" => {
                    layer.report_interval_secs =
                        Some(parse_number(value, "a number of seconds").map_err(env_error)?)
                }
                "report_ca_file" => layer.report_ca_file = Some(PathBuf::from(value)),
                "drain_timeout_secs" => {
                    layer.drain_timeout_secs =
                        Some(parse_number(value, "a number of seconds").map_err(env_error)?)
                }
                "media_timeout_secs" => {
                    layer.media_timeout_secs =
                        Some(parse_number(value, "a number of seconds").map_err(env_error)?)
                }
                "batch_wait_us" => {
                    layer.batch_wait_us =
                        Some(parse_number(value, "a number of microseconds").map_err(env_error)?)
                }
                "media_socket_buffer_bytes" => {
                    layer.media_socket_buffer_bytes =
                        Some(parse_number(value, "a number of bytes").map_err(env_error)?)
                }
                "log_format" => layer.log_format = Some(value.parse().map_err(env_error)?),
                "log_filter" if name == "RUST_LOG" => layer.log_filter = Some(value.to_owned()),
                _ => {
                    return Err(ConfigError::UnknownEnv {
                        var: name.to_owned(),
                        known: KEYS
                            .iter()
                            .map(|k| env_var_for(k))
                            .chain([ENV_CONFIG.to_owned()])
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
                }
            }
        }
        Ok(layer)
    }
}

fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

/// "line L, column C: message", without toml's source excerpt, which could show a secret.
fn describe_toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim_end();
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_owned(),
    }
}

/// One invalid key: which, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The config key (as in the TOML file).
    pub key: &'static str,
    /// What is wrong and how to fix it.
    pub problem: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (set by key `{}` in the config file, {}",
            self.key,
            self.problem,
            self.key,
            env_var_for(self.key)
        )?;
        match flag_for(self.key) {
            Some(flag) => write!(f, " or {flag})"),
            None => f.write_str(")"),
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file given with `--config`.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for this schema: syntax, unknown key, wrong type or an
    /// unparsable value.
    #[error("config file {}: {message}", path.display())]
    File {
        /// The file given with `--config`.
        path: PathBuf,
        /// Where and what (never the offending source line).
        message: String,
    },
    /// An environment variable's value cannot be parsed.
    #[error("environment variable {var}: {problem}")]
    Env {
        /// The variable, e.g. `MEDIA_NODE_CONTROL_LISTEN`.
        var: String,
        /// What is wrong with its value.
        problem: String,
    },
    /// A `MEDIA_NODE_*` variable that is not a config key (likely a typo).
    #[error("unknown environment variable {var}; known variables: {known}")]
    UnknownEnv {
        /// The unknown variable.
        var: String,
        /// The variables that are understood.
        known: String,
    },
    /// The values parse but do not make a working node.
    #[error("invalid configuration:{}", .0.iter().map(|e| format!("\n  - {e}")).collect::<String>())]
    Invalid(Vec<FieldError>),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    fn invalid_keys(result: Result<Config, ConfigError>) -> Vec<&'static str> {
        match result {
            Err(ConfigError::Invalid(errors)) => errors.iter().map(|e| e.key).collect(),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn no_file_no_env_no_flags_gives_valid_loopback_defaults() {
        let config = Config::load(None, env(&[]), Overrides::default()).unwrap();
        assert_eq!(config, Config::default());
        assert!(config.control_listen.ip().is_loopback());
        assert!(config.media_listen.ip().is_loopback());
    }

    #[test]
    fn flags_override_env_which_overrides_file_which_overrides_defaults() {
        let file = Overrides::from_toml(
            r#"
            id = "from-file"
            region = "from-file"
            capacity = 7
            log_format = "json"
            "#,
        )
        .unwrap();
        let env = Overrides::from_env(env(&[
            ("MEDIA_NODE_REGION", "from-env"),
            ("MEDIA_NODE_CAPACITY", "8"),
            ("RUST_LOG", "debug"),
        ]))
        .unwrap();
        let cli = Overrides {
            capacity: Some(9),
            ..Overrides::default()
        };
        let config = Config::from_layers([file, env, cli]).unwrap();
        assert_eq!(config.id, "from-file");
        assert_eq!(config.region, "from-env");
        assert_eq!(config.capacity, 9);
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.log_filter, "debug");
        assert_eq!(
            config.drain_timeout_secs,
            Config::default().drain_timeout_secs
        );
    }

    #[test]
    fn over_prefers_the_upper_layer_and_falls_back_to_the_lower() {
        let upper = Overrides {
            id: Some("upper".into()),
            ..Overrides::default()
        };
        let lower = Overrides {
            id: Some("lower".into()),
            region: Some("lower".into()),
            ..Overrides::default()
        };
        let merged = upper.over(lower);
        assert_eq!(merged.id.as_deref(), Some("upper"));
        assert_eq!(merged.region.as_deref(), Some("lower"));
    }

    #[test]
    fn every_key_in_the_example_file_is_accepted_and_documented() {
        let text = include_str!("../media-node.example.toml");
        let uncommented: String = text
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|l| l.contains(" = "))
                    .unwrap_or(l)
            })
            .collect::<Vec<_>>()
            .join("\n");
        Overrides::from_toml(text).unwrap();
        Overrides::from_toml(&uncommented).unwrap();
        for key in KEYS {
            assert!(
                text.lines()
                    .any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} ="))),
                "example file does not document `{key}`"
            );
        }
    }

    #[test]
    fn report_keys_come_from_the_file_and_the_environment() {
        let file = Overrides::from_toml(
            r#"
            report_transport = "h3"
            report_interval_secs = 9
            report_ca_file = "/etc/media-node/ca.pem"
            control_url = "https://203.0.113.7:9090"
            "#,
        )
        .unwrap();
        assert_eq!(file.report_transport, Some(ReportTransport::H3));
        assert_eq!(file.report_interval_secs, Some(9));
        assert_eq!(
            file.report_ca_file.as_deref(),
            Some(Path::new("/etc/media-node/ca.pem"))
        );
        let from_env = Overrides::from_env(env(&[
            ("MEDIA_NODE_REPORT_TRANSPORT", "https"),
            ("MEDIA_NODE_REPORT_INTERVAL_SECS", "2"),
        ]))
        .unwrap();
        let config = Config::from_layers([file, from_env]).unwrap();
        assert_eq!(config.report_transport, ReportTransport::Https);
        assert_eq!(config.report_interval(), Duration::from_secs(2));
        assert_eq!(
            config.effective_control_url("127.0.0.1:1".parse().unwrap()),
            "https://203.0.113.7:9090"
        );
        let err = Overrides::from_env(env(&[("MEDIA_NODE_REPORT_TRANSPORT", "quic")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("MEDIA_NODE_REPORT_TRANSPORT"), "{err}");
        assert!(err.contains("\"auto\""), "{err}");
    }

    #[test]
    fn metrics_listen_is_off_by_default_and_set_by_file_env_or_flag() {
        assert_eq!(Config::default().metrics_listen, None);
        let file = Overrides::from_toml("metrics_listen = \"127.0.0.1:9100\"").unwrap();
        assert_eq!(file.metrics_listen, Some("127.0.0.1:9100".parse().unwrap()));
        let from_env =
            Overrides::from_env(env(&[("MEDIA_NODE_METRICS_LISTEN", "127.0.0.1:0")])).unwrap();
        let config = Config::from_layers([file, from_env]).unwrap();
        assert_eq!(config.metrics_listen, Some("127.0.0.1:0".parse().unwrap()));
        assert!(config
            .to_toml()
            .contains("metrics_listen = \"127.0.0.1:0\""));
        let err = Overrides::from_toml("metrics_listen = \"localhost:9100\"").unwrap_err();
        assert!(err.starts_with("metrics_listen:"), "{err}");
        let cli = <crate::Cli as clap::Parser>::try_parse_from([
            "media-node",
            "--metrics-listen",
            "[::1]:9100",
        ])
        .unwrap();
        assert_eq!(
            cli.overrides.metrics_listen,
            Some("[::1]:9100".parse().unwrap())
        );
    }

    #[test]
    fn control_url_defaults_to_the_bound_control_address() {
        let config = Config::default();
        assert_eq!(config.report_interval_secs, 5);
        assert_eq!(config.report_transport, ReportTransport::Auto);
        assert_eq!(
            config.effective_control_url("127.0.0.1:40123".parse().unwrap()),
            "http://127.0.0.1:40123"
        );
        let public = Config {
            public_ip: Some("203.0.113.7".parse().unwrap()),
            ..Config::default()
        };
        assert_eq!(
            public.effective_control_url("0.0.0.0:9090".parse().unwrap()),
            "http://203.0.113.7:9090"
        );
    }

    #[test]
    fn report_url_needs_the_fleet_secret_and_a_sane_interval() {
        let no_secret = Config::from_layers([Overrides {
            report_url: Some("https://fleet.example.com/fleet/report".into()),
            report_interval_secs: Some(0),
            ..Overrides::default()
        }]);
        let text = no_secret.as_ref().unwrap_err().to_string();
        assert!(text.contains("MEDIA_NODE_FLEET_SECRET"), "{text}");
        assert_eq!(
            invalid_keys(no_secret),
            ["report_url", "report_interval_secs"]
        );
        let ok = Config::from_layers([Overrides {
            report_url: Some("https://fleet.example.com/fleet/report".into()),
            fleet_secret: Some(Secret::new("0123456789abcdef0123")),
            ..Overrides::default()
        }]);
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn unknown_key_in_file_is_rejected_naming_it() {
        let err = Overrides::from_toml("id = \"a\"\ncontrol_port = 9090\n").unwrap_err();
        assert!(err.contains("control_port"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn toml_syntax_error_on_the_secret_line_does_not_quote_the_secret() {
        let err = Overrides::from_toml("fleet_secret = \"s3cret-s3cret-s3cret\n").unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
        let err = Overrides::from_toml("fleet_secret = 12345678901234567\n").unwrap_err();
        assert!(!err.contains("12345678901234567"), "{err}");
        assert!(
            err.contains("fleet_secret") || err.contains("secret"),
            "{err}"
        );
    }

    #[test]
    fn bad_socket_address_is_rejected_naming_the_key_or_variable() {
        let err = Overrides::from_toml("control_listen = \"localhost:9090\"").unwrap_err();
        assert!(err.starts_with("control_listen:"), "{err}");
        assert!(err.contains("IP:PORT"), "{err}");

        let err = Overrides::from_env(env(&[("MEDIA_NODE_MEDIA_LISTEN", "3478")])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("MEDIA_NODE_MEDIA_LISTEN"), "{text}");
        assert!(text.contains("IP:PORT"), "{text}");
    }

    #[test]
    fn unknown_media_node_env_var_is_rejected_other_vars_ignored() {
        let err = Overrides::from_env(env(&[("MEDIA_NODE_CONTROL_PORT", "1")])).unwrap_err();
        assert!(
            matches!(err, ConfigError::UnknownEnv { ref var, .. } if var == "MEDIA_NODE_CONTROL_PORT")
        );
        assert!(err.to_string().contains("MEDIA_NODE_CONTROL_LISTEN"));

        let layer = Overrides::from_env(env(&[
            ("PATH", "/usr/bin"),
            ("MEDIA_NODE_CONFIG", "/etc/media-node.toml"),
            ("MEDIA_NODE_ID", ""),
        ]))
        .unwrap();
        assert_eq!(layer, Overrides::default());
    }

    #[test]
    fn bad_number_in_env_names_the_variable() {
        let err = Overrides::from_env(env(&[("MEDIA_NODE_RTP_PORT_MIN", "70000")])).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("environment variable MEDIA_NODE_RTP_PORT_MIN"),
            "{text}"
        );
        assert!(text.contains("70000"), "{text}");
    }

    #[test]
    fn port_min_above_port_max_is_rejected_saying_how_to_fix() {
        let result = Config::from_layers([Overrides {
            rtp_port_min: Some(50_000),
            rtp_port_max: Some(40_000),
            ..Overrides::default()
        }]);
        let text = result.as_ref().unwrap_err().to_string();
        assert_eq!(invalid_keys(result), ["rtp_port_min"]);
        assert!(
            text.contains("rtp_port_min (50000) is greater than rtp_port_max (40000)"),
            "{text}"
        );
        assert!(text.contains("MEDIA_NODE_RTP_PORT_MIN"), "{text}");
        assert!(text.contains("--rtp-port-min"), "{text}");
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let result = Config::from_layers([Overrides {
            id: Some("has space".into()),
            region: Some(String::new()),
            capacity: Some(0),
            drain_timeout_secs: Some(MAX_DRAIN_TIMEOUT_SECS + 1),
            report_url: Some("fleet.example.com".into()),
            log_filter: Some("media_node=loud".into()),
            ..Overrides::default()
        }]);
        assert_eq!(
            invalid_keys(result),
            [
                "id",
                "region",
                "capacity",
                "report_url",
                "drain_timeout_secs",
                "log_filter"
            ]
        );
    }

    #[test]
    fn rtp_range_too_small_for_capacity_is_rejected() {
        let result = Config::from_layers([Overrides {
            rtp_port_min: Some(40_000),
            rtp_port_max: Some(40_009),
            capacity: Some(6),
            ..Overrides::default()
        }]);
        assert_eq!(invalid_keys(result), ["capacity"]);
        let ok = Config::from_layers([Overrides {
            rtp_port_min: Some(40_000),
            rtp_port_max: Some(40_009),
            capacity: Some(5),
            ..Overrides::default()
        }]);
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn media_port_inside_rtp_range_is_rejected() {
        let result = Config::from_layers([Overrides {
            media_listen: Some("127.0.0.1:40001".parse().unwrap()),
            ..Overrides::default()
        }]);
        assert_eq!(invalid_keys(result), ["media_listen"]);
    }

    #[test]
    fn wildcard_media_listen_requires_public_ip() {
        let wildcard = Overrides {
            media_listen: Some("0.0.0.0:3478".parse().unwrap()),
            ..Overrides::default()
        };
        assert_eq!(
            invalid_keys(Config::from_layers([wildcard.clone()])),
            ["public_ip"]
        );
        let with_ip = Overrides {
            public_ip: Some("203.0.113.7".parse().unwrap()),
            ..wildcard
        };
        let config = Config::from_layers([with_ip]).unwrap();
        assert_eq!(
            config.advertised_ip(),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
    }

    /// A self-signed certificate and key for 127.0.0.1, written as PEM files under a fresh
    /// temporary directory named after `name`; returns (cert, key, other key).
    fn tls_files(name: &str) -> (PathBuf, PathBuf, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("media-node-config-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let one = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let two = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let (cert, key, other) = (
            dir.join("cert.pem"),
            dir.join("key.pem"),
            dir.join("other.pem"),
        );
        std::fs::write(&cert, one.cert.pem()).unwrap();
        std::fs::write(&key, one.signing_key.serialize_pem()).unwrap();
        std::fs::write(&other, two.signing_key.serialize_pem()).unwrap();
        (cert, key, other)
    }

    #[test]
    fn non_loopback_control_listen_without_tls_is_refused() {
        let public = Overrides {
            control_listen: Some("0.0.0.0:9090".parse().unwrap()),
            fleet_secret: Some(Secret::new("0123456789abcdef0123")),
            ..Overrides::default()
        };
        let result = Config::from_layers([public.clone()]);
        let text = result.as_ref().unwrap_err().to_string();
        assert!(
            text.contains("control_tls_cert and control_tls_key"),
            "{text}"
        );
        assert!(text.contains("plain HTTP is for loopback only"), "{text}");
        assert!(text.contains("MEDIA_NODE_CONTROL_TLS_CERT"), "{text}");
        assert_eq!(invalid_keys(result), ["control_tls_cert"]);

        let (cert, key, _) = tls_files("public");
        let with_tls = Overrides {
            control_tls_cert: Some(cert),
            control_tls_key: Some(key),
            ..public
        };
        let config = Config::from_layers([with_tls]).unwrap();
        assert!(config.control_tls());
        assert_eq!(
            config.effective_control_url("0.0.0.0:9090".parse().unwrap()),
            "https://127.0.0.1:9090"
        );
        // Loopback stays allowed without TLS, with plain http:// as the default URL.
        let loopback = Config::default();
        assert!(!loopback.control_tls());
        assert_eq!(loopback.control_scheme(), "http");
    }

    #[test]
    fn control_tls_cert_and_key_go_together_and_must_be_usable() {
        let (cert, key, other) = tls_files("pair");
        let cert_only = Config::from_layers([Overrides {
            control_tls_cert: Some(cert.clone()),
            ..Overrides::default()
        }]);
        let text = cert_only.as_ref().unwrap_err().to_string();
        assert!(text.contains("set both"), "{text}");
        assert_eq!(invalid_keys(cert_only), ["control_tls_key"]);
        let key_only = Config::from_layers([Overrides {
            control_tls_key: Some(key.clone()),
            ..Overrides::default()
        }]);
        assert_eq!(invalid_keys(key_only), ["control_tls_cert"]);

        let missing = Config::from_layers([Overrides {
            control_tls_cert: Some(PathBuf::from("/nonexistent/cert.pem")),
            control_tls_key: Some(key.clone()),
            ..Overrides::default()
        }]);
        let text = missing.as_ref().unwrap_err().to_string();
        assert!(text.contains("/nonexistent/cert.pem"), "{text}");
        assert_eq!(invalid_keys(missing), ["control_tls_cert"]);
        let swapped = Config::from_layers([Overrides {
            control_tls_cert: Some(key.clone()),
            control_tls_key: Some(cert.clone()),
            ..Overrides::default()
        }]);
        assert_eq!(invalid_keys(swapped), ["control_tls_cert"]);
        let mismatched = Config::from_layers([Overrides {
            control_tls_cert: Some(cert.clone()),
            control_tls_key: Some(other),
            ..Overrides::default()
        }]);
        assert_eq!(invalid_keys(mismatched), ["control_tls_key"]);

        // From the file, the environment and the flags.
        let file = Overrides::from_toml(&format!(
            "control_tls_cert = {:?}\ncontrol_tls_key = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        ))
        .unwrap();
        let config = Config::from_layers([file]).unwrap();
        assert_eq!(config.control_scheme(), "https");
        assert_eq!(
            config.effective_control_url("127.0.0.1:9090".parse().unwrap()),
            "https://127.0.0.1:9090"
        );
        let from_env = Overrides::from_env(env(&[
            ("MEDIA_NODE_CONTROL_TLS_CERT", "/a/cert.pem"),
            ("MEDIA_NODE_CONTROL_TLS_KEY", "/a/key.pem"),
        ]))
        .unwrap();
        assert_eq!(
            from_env.control_tls_cert.as_deref(),
            Some(Path::new("/a/cert.pem"))
        );
        assert_eq!(
            from_env.control_tls_key.as_deref(),
            Some(Path::new("/a/key.pem"))
        );
        let cli = <crate::Cli as clap::Parser>::try_parse_from([
            "media-node",
            "--control-tls-cert",
            "/b/cert.pem",
            "--control-tls-key",
            "/b/key.pem",
        ])
        .unwrap();
        assert_eq!(
            cli.overrides.control_tls_cert.as_deref(),
            Some(Path::new("/b/cert.pem"))
        );
        assert_eq!(
            cli.overrides.control_tls_key.as_deref(),
            Some(Path::new("/b/key.pem"))
        );
    }

    #[test]
    fn non_loopback_control_listen_requires_a_long_enough_fleet_secret() {
        let (cert, key, _) = tls_files("secret");
        let public = Overrides {
            control_listen: Some("0.0.0.0:9090".parse().unwrap()),
            control_tls_cert: Some(cert),
            control_tls_key: Some(key),
            ..Overrides::default()
        };
        assert_eq!(
            invalid_keys(Config::from_layers([public.clone()])),
            ["fleet_secret"]
        );
        let short = Overrides {
            fleet_secret: Some(Secret::new("short")),
            ..public.clone()
        };
        let result = Config::from_layers([short]);
        let text = result.as_ref().unwrap_err().to_string();
        assert!(!text.contains("short\""), "{text}");
        assert!(!text.contains("--fleet-secret"), "no such flag: {text}");
        assert_eq!(invalid_keys(result), ["fleet_secret"]);
        let long = Overrides {
            fleet_secret: Some(Secret::new("0123456789abcdef0123")),
            ..public
        };
        assert!(Config::from_layers([long]).is_ok());
    }

    #[test]
    fn check_config_rendering_redacts_the_secret_and_round_trips() {
        let config = Config::from_layers([Overrides {
            fleet_secret: Some(Secret::new("do-not-print-me-please")),
            report_url: Some("https://fleet.example.com/report".into()),
            ..Overrides::default()
        }])
        .unwrap();
        let text = config.to_toml();
        assert!(!text.contains("do-not-print-me-please"), "{text}");
        assert!(!format!("{config:?}").contains("do-not-print-me-please"));
        assert!(text.contains("fleet_secret = \"<redacted>\""), "{text}");
        // Fed back as a config file, the output must not run with "<redacted>" as the secret...
        let as_is = Config::from_layers([Overrides::from_toml(&text).unwrap()]);
        assert_eq!(invalid_keys(as_is), ["fleet_secret"]);
        // ...and everything else round-trips (the secret supplied again, as from the
        // environment: report_url needs it).
        let without_secret: String = text
            .lines()
            .filter(|l| !l.starts_with("fleet_secret"))
            .map(|l| format!("{l}\n"))
            .collect();
        let secret_from_env = Overrides {
            fleet_secret: Some(Secret::new("another-secret-from-env")),
            ..Overrides::default()
        };
        let reparsed = Config::from_layers([
            Overrides::from_toml(&without_secret).unwrap(),
            secret_from_env,
        ])
        .unwrap();
        assert_eq!(
            reparsed,
            Config {
                fleet_secret: Some(Secret::new("another-secret-from-env")),
                ..config
            }
        );
    }
}
