//! Command-line interface (`--help` text comes from the doc comments here and in
//! [`Overrides`]).

use std::path::PathBuf;

use crate::config::Overrides;

const AFTER_HELP: &str = "\
Precedence: flags > environment > config file > built-in defaults.
Environment: MEDIA_NODE_<KEY> for every config key (e.g. MEDIA_NODE_CONTROL_LISTEN), \
MEDIA_NODE_FLEET_SECRET for the fleet secret (never a flag), RUST_LOG for the log filter. \
An unknown MEDIA_NODE_* variable is an error; an empty one counts as unset.
Every key is documented in media-node.example.toml.
Exit status: 0 after a graceful shutdown (SIGTERM/SIGINT; a second signal exits at once with \
128+signal), 1 on a runtime error, 2 on a configuration or usage error.";

/// Media bridge node of the webphone platform: WebRTC (ICE-lite, DTLS-SRTP) with browsers,
/// plain RTP with the upstream SIP side.
#[derive(Debug, clap::Parser)]
#[command(name = "media-node", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// TOML config file (default: none, built-in defaults)
    #[arg(long, value_name = "PATH", env = crate::config::ENV_CONFIG)]
    pub config: Option<PathBuf>,

    /// Print the effective configuration (secrets redacted) and exit 0, or the problem and
    /// exit 2
    #[arg(long)]
    pub check_config: bool,

    #[command(flatten)]
    pub overrides: Overrides,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_fill_the_overrides_layer() {
        let cli = Cli::try_parse_from([
            "media-node",
            "--check-config",
            "--control-listen",
            "127.0.0.1:0",
            "--rtp-port-max",
            "41000",
            "--log-format",
            "json",
        ])
        .unwrap();
        assert!(cli.check_config);
        assert_eq!(
            cli.overrides.control_listen,
            Some("127.0.0.1:0".parse().unwrap())
        );
        assert_eq!(cli.overrides.rtp_port_max, Some(41_000));
        assert_eq!(
            cli.overrides.log_format,
            Some(crate::config::LogFormat::Json)
        );
        assert_eq!(cli.overrides.id, None);
    }

    #[test]
    fn there_is_no_flag_for_the_fleet_secret() {
        assert!(Cli::try_parse_from(["media-node", "--fleet-secret", "x"]).is_err());
    }

    #[test]
    fn bad_address_flag_is_a_usage_error_naming_the_flag() {
        let err = Cli::try_parse_from(["media-node", "--media-listen", "nope"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("--media-listen"), "{err}");
    }
}
