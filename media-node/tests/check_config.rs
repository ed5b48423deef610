//! `--check-config` prints the effective config (secret redacted) and exits 0, or names the bad
//! key and exits 2; the fleet secret never shows either way.

mod common;

use std::path::PathBuf;
use std::process::Output;

use common::media_node;

const SECRET: &str = "top-secret-fleet-key-0123456789";

fn config_file(name: &str, text: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("media-node-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).expect("write config file");
    path
}

fn check(path: &PathBuf, env: &[(&str, &str)]) -> (Output, String, String) {
    let mut command = media_node();
    command.arg("--config").arg(path).arg("--check-config");
    for (k, v) in env {
        command.env(k, v);
    }
    let output = command.output().expect("run media-node");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

#[test]
fn bad_config_exits_2_naming_the_key_without_showing_the_secret() {
    let path = config_file(
        "bad-ports",
        &format!("fleet_secret = \"{SECRET}\"\nrtp_port_min = 50000\nrtp_port_max = 40000\n"),
    );
    let (output, stdout, stderr) = check(&path, &[]);
    assert_eq!(
        output.status.code(),
        Some(2),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stderr.contains("rtp_port_min"), "{stderr}");
    assert!(stderr.contains("greater than rtp_port_max"), "{stderr}");
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "secret shown"
    );
}

#[test]
fn unknown_key_exits_2_naming_it() {
    let path = config_file("unknown-key", "id = \"n1\"\ncontrol_port = 9090\n");
    let (output, _, stderr) = check(&path, &[]);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("control_port"), "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");
}

#[test]
fn good_config_prints_the_effective_config_with_the_secret_redacted() {
    let path = config_file(
        "good",
        &format!("id = \"from-file\"\nregion = \"from-file\"\nfleet_secret = \"{SECRET}\"\n"),
    );
    let (output, stdout, stderr) = check(
        &path,
        &[
            ("MEDIA_NODE_REGION", "from-env"),
            ("MEDIA_NODE_FLEET_SECRET", "another-secret-from-the-env"),
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("id = \"from-file\""), "{stdout}");
    assert!(stdout.contains("region = \"from-env\""), "{stdout}");
    assert!(stdout.contains("fleet_secret = \"<redacted>\""), "{stdout}");
    for secret in [SECRET, "another-secret-from-the-env"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "secret shown"
        );
    }
}

#[test]
fn example_config_passes_the_check() {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("media-node.example.toml");
    let (output, stdout, stderr) = check(&example, &[]);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("control_listen = \"127.0.0.1:9090\""),
        "{stdout}"
    );
}
