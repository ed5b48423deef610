//! Static checks of the Terraform code under `terraform/`, for machines without Terraform.
//!
//! Every `.tf` file is parsed with `hcl-rs`; variables, outputs, provider pins and module calls are
//! checked against the rules of HashiCorp's standard module structure; the media node's cloud-init
//! template is rendered the way `templatefile` would (HCL template syntax, evaluated by `hcl-rs`)
//! and the result must be a `#cloud-config` YAML document whose systemd unit drains on stop.
//! What needs Terraform and the providers (schema validation, `terraform plan`) is not covered.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use hcl::eval::{Context, Evaluate};
use hcl::{Block, Body, Expression, ObjectKey};
use media_node::config::{Config, Overrides};

fn terraform_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../terraform")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every `.tf` file under `terraform/` (skipping `.terraform/` working directories), sorted.
fn tf_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {dir:?}: {e}"));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != ".terraform") {
                    walk(&path, out);
                }
            } else if path.extension().is_some_and(|e| e == "tf") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&terraform_dir(), &mut files);
    files.sort();
    files
}

fn parse(path: &Path) -> Body {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    hcl::parse(&text).unwrap_or_else(|e| panic!("{path:?} is not valid HCL: {e}"))
}

/// Parsed `.tf` files grouped by module directory.
fn modules() -> BTreeMap<PathBuf, Vec<(PathBuf, Body)>> {
    let mut by_dir: BTreeMap<PathBuf, Vec<(PathBuf, Body)>> = BTreeMap::new();
    for path in tf_files() {
        let body = parse(&path);
        let dir = path.parent().expect("file has a directory").to_path_buf();
        by_dir.entry(dir).or_default().push((path, body));
    }
    by_dir
}

fn blocks<'a>(body: &'a Body, kind: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
    body.blocks().filter(move |b| b.identifier.as_str() == kind)
}

fn label(block: &Block, index: usize) -> &str {
    block.labels.get(index).map(|l| l.as_str()).unwrap_or("")
}

fn attr<'a>(body: &'a Body, key: &str) -> Option<&'a Expression> {
    body.attributes()
        .find(|a| a.key.as_str() == key)
        .map(|a| &a.expr)
}

fn string_attr(body: &Body, key: &str) -> Option<String> {
    match attr(body, key)? {
        Expression::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn object_key(key: &ObjectKey) -> String {
    match key {
        ObjectKey::Identifier(id) => id.as_str().to_owned(),
        ObjectKey::Expression(Expression::String(s)) => s.clone(),
        other => panic!("unexpected object key {other:?}"),
    }
}

fn relative(path: &Path) -> String {
    path.strip_prefix(terraform_dir())
        .unwrap_or(path)
        .display()
        .to_string()
}

#[test]
fn every_terraform_file_parses_and_the_standard_layout_is_complete() {
    let files: BTreeSet<String> = tf_files().iter().map(|p| relative(p)).collect();
    for file in &files {
        parse(&terraform_dir().join(file));
    }
    for dir in [
        "",
        "modules/cloudflare-edge/",
        "modules/media-fleet-hetzner/",
        "modules/media-node-cloud-init/",
        "examples/complete/",
    ] {
        for name in ["main.tf", "variables.tf", "outputs.tf", "versions.tf"] {
            let file = format!("{dir}{name}");
            assert!(files.contains(&file), "terraform/{file} is missing");
        }
    }
    let readme = std::fs::read_to_string(terraform_dir().join("README.md")).expect("README.md");
    assert!(
        !readme.contains("Not written yet"),
        "terraform/README.md is still the placeholder"
    );
}

#[test]
fn every_variable_has_a_type_and_a_description() {
    let mut seen = 0;
    for (path, body) in modules().into_values().flatten() {
        for var in blocks(&body, "variable") {
            seen += 1;
            let name = label(var, 0);
            let where_ = format!("variable {name:?} in {}", relative(&path));
            assert!(attr(&var.body, "type").is_some(), "{where_} has no type");
            let description = attr(&var.body, "description")
                .unwrap_or_else(|| panic!("{where_} has no description"));
            assert!(
                !matches!(description, Expression::String(s) if s.trim().is_empty()),
                "{where_} has an empty description"
            );
            for validation in blocks(&var.body, "validation") {
                assert!(
                    attr(&validation.body, "condition").is_some()
                        && attr(&validation.body, "error_message").is_some(),
                    "{where_} has a validation without condition or error_message"
                );
            }
        }
    }
    assert!(seen > 20, "only {seen} variables found");
}

#[test]
fn secrets_are_sensitive_variables() {
    for (path, body) in modules().into_values().flatten() {
        for var in blocks(&body, "variable") {
            let name = label(var, 0);
            if ["token", "secret"].iter().any(|s| name.contains(s)) {
                assert!(
                    matches!(attr(&var.body, "sensitive"), Some(Expression::Bool(true))),
                    "variable {name:?} in {} holds a secret but is not sensitive = true",
                    relative(&path)
                );
            }
        }
    }
}

#[test]
fn every_output_has_a_description() {
    let mut seen = 0;
    for (path, body) in modules().into_values().flatten() {
        for output in blocks(&body, "output") {
            seen += 1;
            assert!(
                attr(&output.body, "description").is_some(),
                "output {:?} in {} has no description",
                label(output, 0),
                relative(&path)
            );
        }
    }
    assert!(seen > 10, "only {seen} outputs found");
}

/// `required_version` and `required_providers` of the `terraform` block in `dir/versions.tf`.
fn versions(
    dir: &Path,
    files: &[(PathBuf, Body)],
) -> (Option<String>, BTreeMap<String, Expression>) {
    let (_, body) = files
        .iter()
        .find(|(p, _)| p.file_name().is_some_and(|n| n == "versions.tf"))
        .unwrap_or_else(|| panic!("{} has no versions.tf", relative(dir)));
    let terraform = blocks(body, "terraform")
        .next()
        .unwrap_or_else(|| panic!("{}/versions.tf has no terraform block", relative(dir)));
    let required_version = string_attr(&terraform.body, "required_version");
    let providers = blocks(&terraform.body, "required_providers")
        .flat_map(|b| b.body.attributes())
        .map(|a| (a.key.as_str().to_owned(), a.expr.clone()))
        .collect();
    (required_version, providers)
}

#[test]
fn versions_tf_pins_terraform_and_every_required_provider() {
    for (dir, files) in modules() {
        let (required_version, providers) = versions(&dir, &files);
        let where_ = format!("{}/versions.tf", relative(&dir));
        let required_version =
            required_version.unwrap_or_else(|| panic!("{where_} sets no required_version"));
        assert!(
            required_version.contains(">="),
            "{where_}: required_version {required_version:?} has no lower bound"
        );
        for (name, spec) in providers {
            let Expression::Object(spec) = spec else {
                panic!("{where_}: provider {name} is not {{ source, version }}");
            };
            let field = |key: &str| {
                spec.iter().find_map(|(k, v)| match v {
                    Expression::String(s) if object_key(k) == key => Some(s.clone()),
                    _ => None,
                })
            };
            let source =
                field("source").unwrap_or_else(|| panic!("{where_}: {name} has no source"));
            assert!(
                source.ends_with(&format!("/{name}")),
                "{where_}: provider {name} has source {source:?}"
            );
            let version =
                field("version").unwrap_or_else(|| panic!("{where_}: {name} is not pinned"));
            assert!(
                version.contains("~>") || version.contains('='),
                "{where_}: {name} version {version:?} is not a pin"
            );
        }
    }
}

#[test]
fn every_provider_a_module_uses_is_declared_in_its_versions_tf() {
    for (dir, files) in modules() {
        let (_, declared) = versions(&dir, &files);
        for (path, body) in &files {
            for block in blocks(body, "resource").chain(blocks(body, "data")) {
                let kind = label(block, 0);
                let provider = kind.split('_').next().unwrap_or_default();
                if provider == "terraform" {
                    continue; // built in: terraform_data
                }
                assert!(
                    declared.contains_key(provider),
                    "{} uses {kind} but {}/versions.tf does not require provider {provider:?}",
                    relative(path),
                    relative(&dir)
                );
            }
        }
    }
}

/// Variables a module declares: name => has a default.
fn declared_variables(dir: &Path) -> BTreeMap<String, bool> {
    let mut vars = BTreeMap::new();
    let dir = dir.canonicalize().expect("canonical module path");
    let in_dir =
        |p: &&PathBuf| p.parent().and_then(|d| d.canonicalize().ok()).as_ref() == Some(&dir);
    for path in tf_files().iter().filter(in_dir) {
        for var in blocks(&parse(path), "variable") {
            vars.insert(
                label(var, 0).to_owned(),
                attr(&var.body, "default").is_some(),
            );
        }
    }
    vars
}

#[test]
fn every_module_call_has_an_existing_source_and_sets_its_required_variables() {
    const META: [&str; 6] = [
        "source",
        "version",
        "for_each",
        "count",
        "depends_on",
        "providers",
    ];
    let mut calls = 0;
    for (path, body) in modules().into_values().flatten() {
        let dir = path.parent().expect("file has a directory");
        for call in blocks(&body, "module") {
            calls += 1;
            let name = label(call, 0);
            let source = string_attr(&call.body, "source")
                .unwrap_or_else(|| panic!("module {name:?} in {} has no source", relative(&path)));
            assert!(
                source.starts_with("./") || source.starts_with("../"),
                "module {name:?} uses a non-local source {source:?}"
            );
            let target = dir.join(&source);
            assert!(
                target.is_dir(),
                "module {name:?} in {}: source {source:?} does not exist",
                relative(&path)
            );
            let variables = declared_variables(&target);
            let set: BTreeSet<&str> = call
                .body
                .attributes()
                .map(|a| a.key.as_str())
                .filter(|k| !META.contains(k))
                .collect();
            for key in &set {
                assert!(
                    variables.contains_key(*key),
                    "module {name:?} in {} sets {key:?}, which {source} does not declare",
                    relative(&path)
                );
            }
            for (var, has_default) in &variables {
                assert!(
                    *has_default || set.contains(var.as_str()),
                    "module {name:?} in {} does not set required variable {var:?} of {source}",
                    relative(&path)
                );
            }
        }
    }
    assert!(calls >= 4, "only {calls} module calls found");
}

/// The keys of the variables object passed to `templatefile` in the cloud-init module.
fn templatefile_variables() -> BTreeSet<String> {
    let main = parse(&terraform_dir().join("modules/media-node-cloud-init/main.tf"));
    let call = blocks(&main, "locals")
        .find_map(|b| attr(&b.body, "user_data"))
        .expect("locals.user_data in media-node-cloud-init/main.tf");
    let Expression::FuncCall(call) = call else {
        panic!("user_data is not a templatefile(...) call");
    };
    assert_eq!(call.name.name.as_str(), "templatefile");
    let Some(Expression::Object(vars)) = call.args.get(1) else {
        panic!("templatefile's second argument is not an object");
    };
    vars.keys().map(object_key).collect()
}

const DRAIN_TIMEOUT_SECS: u64 = 600;

/// A self-signed certificate and key for the example control host, made once per test run.
fn control_tls() -> &'static (String, String) {
    static TLS: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    TLS.get_or_init(|| {
        let cert = rcgen::generate_simple_self_signed(vec![
            "webphone-eu-central-1-a1b2c3.media.example.com".to_owned(),
        ])
        .expect("self-signed certificate");
        (cert.cert.pem(), cert.signing_key.serialize_pem())
    })
}

fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Renders the cloud-init template as `templatefile` would, with example values.
fn render_cloud_init(report_url: &str) -> String {
    let path = terraform_dir().join("modules/media-node-cloud-init/cloud-init.yaml.tftpl");
    let text = std::fs::read_to_string(&path).expect("cloud-init template");
    let values: [(&str, hcl::Value); 19] = [
        ("node_id", "webphone-eu-central-1-a1b2c3".into()),
        ("region", "eu-central".into()),
        (
            "binary_url",
            "https://downloads.example.com/media-node".into(),
        ),
        ("binary_sha256", "ab".repeat(32).into()),
        ("control_port", 9090.into()),
        ("media_port", 3478.into()),
        ("rtp_port_min", 40000.into()),
        ("rtp_port_max", 49999.into()),
        ("capacity", 200.into()),
        ("drain_timeout_secs", DRAIN_TIMEOUT_SECS.into()),
        ("stop_margin_secs", 30.into()),
        ("fleet_secret", "0123456789abcdef0123456789abcdef".into()),
        ("report_url", report_url.into()),
        (
            "public_ip_command",
            "curl -fsS http://169.254.169.254/hetzner/v1/metadata/public-ipv4".into(),
        ),
        ("log_format", "json".into()),
        ("log_filter", "info".into()),
        (
            "control_host",
            "webphone-eu-central-1-a1b2c3.media.example.com".into(),
        ),
        ("control_tls_cert_b64", b64(&control_tls().0).into()),
        ("control_tls_key_b64", b64(&control_tls().1).into()),
    ];
    let passed = templatefile_variables();
    let declared: BTreeSet<String> = values.iter().map(|(k, _)| (*k).to_owned()).collect();
    assert_eq!(
        passed, declared,
        "the test renders the template with other variables than main.tf passes"
    );
    let mut ctx = Context::new();
    for (name, value) in values {
        ctx.declare_var(name, value);
    }
    let template: hcl::Template = text.parse().expect("template parses as an HCL template");
    template
        .evaluate(&ctx)
        .unwrap_or_else(|e| panic!("template does not render: {e}"))
}

fn write_file(doc: &serde_norway::Value, path: &str) -> (String, String) {
    let files = doc["write_files"]
        .as_sequence()
        .expect("write_files is a list");
    let entry = files
        .iter()
        .find(|f| f["path"].as_str() == Some(path))
        .unwrap_or_else(|| panic!("write_files has no entry for {path}"));
    let content = entry["content"].as_str().expect("content").to_owned();
    let permissions = entry["permissions"].as_str().unwrap_or_default().to_owned();
    (content, permissions)
}

/// `Key=value` of a systemd unit (the last one wins, as in systemd for most keys).
fn unit_value<'a>(unit: &'a str, key: &str) -> Option<&'a str> {
    unit.lines()
        .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .next_back()
}

#[test]
fn cloud_init_lets_the_shared_media_socket_have_the_buffer_the_node_asks_for() {
    let rendered = render_cloud_init("");
    let doc: serde_norway::Value = serde_norway::from_str(&rendered)
        .unwrap_or_else(|e| panic!("rendered cloud-init is not YAML: {e}\n{rendered}"));
    let (sysctl, _) = write_file(&doc, "/etc/sysctl.d/60-media-node.conf");
    // media-node's default media_socket_buffer_bytes (media-node/src/config.rs).
    let asked = media_node::config::Config::default().media_socket_buffer_bytes;
    for key in ["net.core.rmem_max", "net.core.wmem_max"] {
        let value: u64 = sysctl
            .lines()
            .find_map(|l| l.trim().strip_prefix(key)?.trim().strip_prefix('='))
            .unwrap_or_else(|| panic!("{key} is not set:\n{sysctl}"))
            .trim()
            .parse()
            .expect("a number");
        assert!(value >= asked, "{key} = {value} < {asked}");
    }
    let runcmd = serde_norway::to_string(&doc["runcmd"]).expect("runcmd");
    let applied = runcmd
        .find("sysctl")
        .expect("runcmd applies the sysctl settings");
    let started = runcmd.find("enable").expect("runcmd enables the unit");
    assert!(
        applied < started,
        "sysctl must apply before the node starts:\n{runcmd}"
    );
}

#[test]
fn cloud_init_installs_a_systemd_unit_that_drains_on_stop() {
    let rendered = render_cloud_init("");
    assert!(
        rendered.starts_with("#cloud-config\n"),
        "user data must start with #cloud-config"
    );
    let doc: serde_norway::Value = serde_norway::from_str(&rendered)
        .unwrap_or_else(|e| panic!("rendered cloud-init is not YAML: {e}\n{rendered}"));

    let (unit, _) = write_file(&doc, "/etc/systemd/system/media-node.service");
    assert_eq!(unit_value(&unit, "Restart"), Some("on-failure"));
    assert_eq!(unit_value(&unit, "KillSignal"), Some("SIGTERM"));
    let user = unit_value(&unit, "User").expect("User=");
    assert!(!user.is_empty() && user != "root", "unit runs as {user:?}");
    let users = doc["users"].as_sequence().expect("users list");
    assert!(
        users
            .iter()
            .any(|u| u["name"].as_str() == Some(user) && u["system"].as_bool() == Some(true)),
        "cloud-init does not create system user {user:?}"
    );
    let stop: u64 = unit_value(&unit, "TimeoutStopSec")
        .expect("TimeoutStopSec=")
        .parse()
        .expect("TimeoutStopSec in seconds");
    assert!(
        stop > DRAIN_TIMEOUT_SECS,
        "TimeoutStopSec={stop} does not leave the {DRAIN_TIMEOUT_SECS} s drain time to finish"
    );
    let nofile: u64 = unit_value(&unit, "LimitNOFILE")
        .expect("LimitNOFILE=")
        .parse()
        .expect("LimitNOFILE number");
    assert!(
        nofile >= 65536,
        "LimitNOFILE={nofile} is low for a media relay"
    );
    assert_eq!(unit_value(&unit, "AmbientCapabilities"), Some(""));

    // The unit starts the binary with the config cloud-init writes, and that config drains as long.
    let exec = unit_value(&unit, "ExecStart").expect("ExecStart=");
    assert!(exec.starts_with("/usr/local/bin/media-node --config /etc/media-node/media-node.toml"));
    let (config, _) = write_file(&doc, "/etc/media-node/media-node.toml");
    let config: toml::Table = config.parse().expect("media-node config is TOML");
    assert_eq!(
        config["drain_timeout_secs"].as_integer(),
        Some(DRAIN_TIMEOUT_SECS as i64)
    );
    assert_eq!(config["region"].as_str(), Some("eu-central"));
    assert!(
        !config.contains_key("fleet_secret"),
        "the secret must not be in the world-readable config"
    );
    assert!(!config.contains_key("report_url"));

    // The secret lives in a root-only environment file the unit reads.
    let (env, permissions) = write_file(&doc, "/etc/media-node/env");
    assert_eq!(permissions, "0600");
    assert!(env.contains("MEDIA_NODE_FLEET_SECRET=0123456789abcdef"));
    assert_eq!(
        unit_value(&unit, "EnvironmentFile"),
        Some("-/run/media-node/public-ip.env")
    );
    assert!(unit.contains("EnvironmentFile=/etc/media-node/env\n"));

    // The binary is installed only after its SHA-256 matched, then the unit is enabled.
    let (install, _) = write_file(&doc, "/usr/local/lib/media-node/install-binary");
    assert!(install.contains(&"ab".repeat(32)) && install.contains("sha256sum --check"));
    let runcmd = serde_norway::to_string(&doc["runcmd"]).expect("runcmd");
    let install_at = runcmd
        .find("install-binary")
        .expect("runcmd installs the binary");
    let enable_at = runcmd.find("enable").expect("runcmd enables the unit");
    assert!(
        install_at < enable_at,
        "the unit is enabled before the binary exists"
    );
}

#[test]
fn media_node_accepts_the_config_and_environment_cloud_init_writes() {
    let rendered = render_cloud_init("https://fleet.example.com/report");
    let doc: serde_norway::Value = serde_norway::from_str(&rendered).expect("YAML");
    let (toml_text, _) = write_file(&doc, "/etc/media-node/media-node.toml");
    let (env_file, _) = write_file(&doc, "/etc/media-node/env");
    // What the unit's EnvironmentFile= lines give the node: the secret, then the detected address.
    let mut env: Vec<(OsString, OsString)> = env_file
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    env.push(("MEDIA_NODE_PUBLIC_IP".into(), "203.0.113.7".into()));
    // The certificate and key cloud-init writes (base64 in write_files), where this test can put
    // them; on the VM the key arrives as a systemd credential (MEDIA_NODE_CONTROL_TLS_KEY=%d/...).
    let dir = std::env::temp_dir().join(format!("terraform-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (path, file, var) in [
        (
            "/etc/media-node/control-tls.crt",
            "control-tls.crt",
            "MEDIA_NODE_CONTROL_TLS_CERT",
        ),
        (
            "/etc/media-node/control-tls.key",
            "control-tls.key",
            "MEDIA_NODE_CONTROL_TLS_KEY",
        ),
    ] {
        let (content, mode) = write_file(&doc, path);
        use base64::Engine as _;
        let pem = base64::engine::general_purpose::STANDARD
            .decode(content.trim())
            .expect("base64 content");
        if file.ends_with(".key") {
            assert_eq!(mode, "0600", "the TLS key must be root-only");
        }
        std::fs::write(dir.join(file), pem).expect("write PEM");
        env.push((var.into(), dir.join(file).into_os_string()));
    }

    let file = Overrides::from_toml(&toml_text)
        .unwrap_or_else(|e| panic!("media-node rejects the TOML: {e}"));
    let env =
        Overrides::from_env(env).unwrap_or_else(|e| panic!("media-node rejects the env: {e}"));
    let config = Config::from_layers([file, env])
        .unwrap_or_else(|e| panic!("media-node rejects the configuration: {e}"));
    assert_eq!(config.drain_timeout().as_secs(), DRAIN_TIMEOUT_SECS);
    assert_eq!(config.advertised_ip().to_string(), "203.0.113.7");
    assert!(config.fleet_secret.is_some());
    assert!(
        toml_text.contains(
            "control_url = \"https://webphone-eu-central-1-a1b2c3.media.example.com:9090\""
        ),
        "{toml_text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cloud_init_sets_report_url_only_when_given() {
    let rendered = render_cloud_init("https://fleet.example.com/report");
    let doc: serde_norway::Value = serde_norway::from_str(&rendered)
        .unwrap_or_else(|e| panic!("rendered cloud-init is not YAML: {e}\n{rendered}"));
    let (config, _) = write_file(&doc, "/etc/media-node/media-node.toml");
    let config: toml::Table = config.parse().expect("media-node config is TOML");
    assert_eq!(
        config["report_url"].as_str(),
        Some("https://fleet.example.com/report")
    );
    assert_eq!(config["log_filter"].as_str(), Some("info"));
}

/// The default value of `variable "<name>"` in `terraform/modules/cloudflare-edge/variables.tf`.
fn edge_default(name: &str) -> Expression {
    let body = parse(&terraform_dir().join("modules/cloudflare-edge/variables.tf"));
    let var = blocks(&body, "variable")
        .find(|b| label(b, 0) == name)
        .unwrap_or_else(|| panic!("cloudflare-edge has no variable {name}"));
    attr(&var.body, "default")
        .unwrap_or_else(|| panic!("variable {name} has no default"))
        .clone()
}

fn strings(expr: &Expression) -> Vec<String> {
    match expr {
        Expression::Array(items) => items
            .iter()
            .map(|e| match e {
                Expression::String(s) => s.clone(),
                other => panic!("expected a string, got {other:?}"),
            })
            .collect(),
        other => panic!("expected a list, got {other:?}"),
    }
}

#[test]
fn edge_module_binds_the_same_durable_objects_as_wrangler_toml() {
    let wrangler: toml::Table = std::fs::read_to_string(repo_root().join("wrangler.toml"))
        .expect("wrangler.toml")
        .parse()
        .expect("wrangler.toml is TOML");
    let wrangler_bindings: BTreeMap<String, String> = wrangler["durable_objects"]["bindings"]
        .as_array()
        .expect("durable_objects.bindings")
        .iter()
        .map(|b| {
            (
                b["name"].as_str().expect("name").to_owned(),
                b["class_name"].as_str().expect("class_name").to_owned(),
            )
        })
        .collect();
    let Expression::Object(defaults) = edge_default("durable_objects") else {
        panic!("durable_objects default is not an object");
    };
    let terraform_bindings: BTreeMap<String, String> = defaults
        .iter()
        .map(|(k, v)| match v {
            Expression::String(class) => (object_key(k), class.clone()),
            other => panic!("class name is not a string: {other:?}"),
        })
        .collect();
    assert_eq!(terraform_bindings, wrangler_bindings);

    let wrangler_classes: BTreeSet<String> = wrangler["migrations"]
        .as_array()
        .expect("[[migrations]]")
        .iter()
        .flat_map(|m| {
            m.get("new_sqlite_classes")
                .and_then(|c| c.as_array())
                .cloned()
        })
        .flatten()
        .map(|c| c.as_str().expect("class name").to_owned())
        .collect();
    let Expression::Array(migrations) = edge_default("durable_object_migrations") else {
        panic!("durable_object_migrations default is not a list");
    };
    let terraform_classes: BTreeSet<String> = migrations
        .iter()
        .flat_map(|m| match m {
            Expression::Object(m) => m
                .iter()
                .filter(|(k, _)| object_key(k) == "new_sqlite_classes")
                .flat_map(|(_, v)| strings(v))
                .collect::<Vec<_>>(),
            other => panic!("migration is not an object: {other:?}"),
        })
        .collect();
    assert_eq!(terraform_classes, wrangler_classes);

    let Expression::String(date) = edge_default("compatibility_date") else {
        panic!("compatibility_date default is not a string");
    };
    assert_eq!(
        Some(date.as_str()),
        wrangler["compatibility_date"].as_str(),
        "Terraform and wrangler deploy with different compatibility dates"
    );
}

#[test]
fn edge_worker_version_uploads_both_bundle_modules_and_every_secret() {
    let main = std::fs::read_to_string(terraform_dir().join("modules/cloudflare-edge/main.tf"))
        .expect("cloudflare-edge/main.tf");
    let body = hcl::parse(&main).expect("cloudflare-edge/main.tf parses");
    let version = blocks(&body, "resource")
        .find(|b| label(b, 0) == "cloudflare_worker_version")
        .expect("a cloudflare_worker_version resource");
    let Some(Expression::Array(modules)) = attr(&version.body, "modules") else {
        panic!("worker version has no modules list");
    };
    let content_types: BTreeSet<String> = modules
        .iter()
        .flat_map(|m| match m {
            Expression::Object(o) => o
                .iter()
                .filter(|(k, _)| object_key(k) == "content_type")
                .filter_map(|(_, v)| match v {
                    Expression::String(s) => Some(s.clone()),
                    _ => None,
                })
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(
        content_types,
        BTreeSet::from([
            "application/javascript+module".to_owned(),
            "application/wasm".to_owned()
        ])
    );
    // The bundle the module uploads imports exactly that wasm module.
    let index = repo_root().join("edge-worker/build/index.js");
    if let Ok(js) = std::fs::read_to_string(&index) {
        assert!(
            js.contains("\"./index_bg.wasm\""),
            "index.js no longer imports ./index_bg.wasm"
        );
    }
    for secret in ["OPERATOR_TOKEN", "SIP_NONCE_SECRET", "FLEET_SECRET"] {
        assert!(
            main.contains(&format!(
                "{{ type = \"secret_text\", name = \"{secret}\", text = var."
            )),
            "the Worker version does not bind secret {secret}"
        );
    }
}
