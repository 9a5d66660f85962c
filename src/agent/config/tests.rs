//! Unit tests of the configuration file: a full file, each class of error with its line, names,
//! defaults, `same_as`, and that no misplaced secret is ever shown.

use super::*;
use crate::cli::args;
use clap::Parser as _;

const TA: &str = "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/ta-1";
const PR: &str = "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/p-1";
const RO: &str = "arn:aws:iam::111122223333:role/web";

fn no_env(_: &str) -> Option<String> {
    None
}

fn path() -> &'static Path {
    Path::new("/etc/rolesanywhere/agent.toml")
}

fn ok(text: &str) -> AgentConfig {
    match parse(text, path(), &no_env) {
        Ok(c) => c,
        Err(e) => panic!("{e}\n{text}"),
    }
}

fn fail(text: &str) -> Error {
    match parse(text, path(), &no_env) {
        Ok(c) => panic!("accepted: {c:?}\n{text}"),
        Err(e) => e,
    }
}

/// A profile with every required key, after `extra` lines (lines 2.. of the file: line 1 is the
/// header `[profiles.web]`).
fn profile(extra: &str) -> String {
    format!(
        "[profiles.web]\n{extra}certificate = \"/etc/ra/web.pem\"\nprivate_key = \"/etc/ra/web.key\"\n\
         trust_anchor_arn = \"{TA}\"\nprofile_arn = \"{PR}\"\nrole_arn = \"{RO}\"\n"
    )
}

/// Asserts the error's line, key path and message start; returns its Display.
#[track_caller]
fn assert_error(text: &str, line: usize, key: &str, message: &str) -> String {
    let e = fail(text);
    let shown = e.to_string();
    let expected = format!("/etc/rolesanywhere/agent.toml:{line}: {key}: {message}");
    assert!(
        shown.starts_with(&expected),
        "\n got: {shown}\nwant: {expected}…\n{text}"
    );
    assert_eq!(e.line(), Some(line), "{shown}");
    shown
}

const FULL: &str = r#"# The agent's configuration.
socket = "/run/rolesanywhere/agent.sock"
socket_group = "root"
metrics_listen = "127.0.0.1:9912"

[profiles.web]
certificate = "/etc/rolesanywhere/web.pem"
private_key = "/etc/rolesanywhere/web.key"
pkcs8_password_file = "/etc/rolesanywhere/web.pass"
trust_anchor_arn = "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/ta-1"
profile_arn = "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/p-1"
role_arn = "arn:aws:iam::111122223333:role/web"
session_duration = 900
role_session_name = "web-host"
listen = ["127.0.0.1:9911", "[::1]:9911"]
hop_limit = 1
container_token_file = "/run/rolesanywhere/web.token"

[profiles."db.prod"]
certificate = "pkcs11:token=db;object=db-key?pin-source=file:/etc/rolesanywhere/db.pin"
pkcs11_lib = "/usr/lib/softhsm/libsofthsm2.so"
reuse_pin = true
trust_anchor_arn = "arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/ta-2"
profile_arn = "arn:aws:rolesanywhere:us-east-1:111122223333:profile/p-2"
role_arn = "arn:aws:iam::111122223333:role/db"
region = "us-east-1"
use_fips_endpoint = true
connect_timeout = 2
timeout = 10
allow_uids = ["root", 1000, "1001"]
allow_gids = [0]

[profiles.tpm-1]
certificate = "/etc/rolesanywhere/tpm.pem"
private_key = "handle:0x81000001"
tpm_tcti = "device:/dev/tpmrm0"
tpm_timeout = 60
tpm_key_password_file = "/etc/rolesanywhere/tpm.pass"
tpm_parent_password_file = "/etc/rolesanywhere/owner.pass"
trust_anchor_arn = "arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/ta-1"
profile_arn = "arn:aws:rolesanywhere:eu-west-1:111122223333:profile/p-1"
role_arn = "arn:aws:iam::111122223333:role/tpm"
endpoint = "https://127.0.0.1:8443"
no_verify_ssl = true
debug = true
"#;

#[test]
fn full_file_with_a_key_file_a_pkcs11_uri_and_a_tpm_handle() {
    let c = ok(FULL);
    assert_eq!(c.path, path());
    assert_eq!(
        c.socket.as_deref(),
        Some(Path::new("/run/rolesanywhere/agent.sock"))
    );
    assert_eq!(c.socket_group, Some(0));
    assert_eq!(c.metrics_listen, Some("127.0.0.1:9912".parse().unwrap()));
    assert_eq!(
        c.profiles.keys().collect::<Vec<_>>(),
        ["db.prod", "tpm-1", "web"]
    );

    let web = &c.profiles["web"];
    assert_eq!(web.name, "web");
    // No lists: the agent's own uid.
    assert_eq!(web.allow_uids, [crate::agent::sys::euid()]);
    assert!(web.allow_gids.is_empty());
    let s = &web.session;
    assert_eq!(s.request.role_arn, "arn:aws:iam::111122223333:role/web");
    assert_eq!(s.request.region, "eu-west-1");
    assert_eq!(s.request.duration_seconds, 900);
    assert_eq!(s.request.role_session_name.as_deref(), Some("web-host"));
    assert_eq!(s.endpoint.host(), "rolesanywhere.eu-west-1.amazonaws.com");
    assert_eq!(
        s.key.pkcs8_password_file.as_deref(),
        Some(Path::new("/etc/rolesanywhere/web.pass"))
    );
    assert!(s.key.pkcs8_password.is_none());
    assert_eq!(
        web.serve,
        Some(ServeConfig {
            listen: vec![
                "127.0.0.1:9911".parse().unwrap(),
                "[::1]:9911".parse().unwrap()
            ],
            hop_limit: 1,
            container_token_file: Some("/run/rolesanywhere/web.token".into()),
        })
    );

    let db = &c.profiles["db.prod"];
    assert_eq!(
        db.session.key.certificate.as_deref(),
        Some("pkcs11:token=db;object=db-key?pin-source=file:/etc/rolesanywhere/db.pin")
    );
    assert!(db.session.key.private_key.is_none());
    assert!(db.session.key.reuse_pin);
    assert_eq!(
        db.session.endpoint.host(),
        "rolesanywhere-fips.us-east-1.amazonaws.com"
    );
    assert_eq!(db.session.client.connect_timeout, Duration::from_secs(2));
    assert_eq!(db.session.client.timeout, Duration::from_secs(10));
    assert!(db.serve.is_none());
    assert_eq!(db.allow_uids, [0, 1000, 1001]);
    assert_eq!(db.allow_gids, [0]);

    let tpm = &c.profiles["tpm-1"];
    assert_eq!(
        tpm.session.key.private_key.as_deref(),
        Some("handle:0x81000001")
    );
    assert_eq!(tpm.session.key.tpm_timeout, Some(Duration::from_secs(60)));
    assert_eq!(
        tpm.session.key.tpm_parent_password_file.as_deref(),
        Some(Path::new("/etc/rolesanywhere/owner.pass"))
    );
    assert_eq!(tpm.session.endpoint.host(), "127.0.0.1:8443");
    assert!(!tpm.session.client.verify_tls);
    assert!(tpm.session.debug);
}

use std::time::Duration;

/// A profile is the flags: the settings built from the file equal those the same flags give.
#[test]
fn a_profile_is_validated_exactly_like_the_same_flags() {
    let c = ok(FULL);
    let flags = [
        "--certificate=/etc/rolesanywhere/tpm.pem",
        "--private-key=handle:0x81000001",
        "--tpm-tcti=device:/dev/tpmrm0",
        "--tpm-timeout=60",
        "--tpm-key-password-file=/etc/rolesanywhere/tpm.pass",
        "--tpm-parent-password-file=/etc/rolesanywhere/owner.pass",
        "--trust-anchor-arn=arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/ta-1",
        "--profile-arn=arn:aws:rolesanywhere:eu-west-1:111122223333:profile/p-1",
        "--role-arn=arn:aws:iam::111122223333:role/tpm",
        "--endpoint=https://127.0.0.1:8443",
        "--no-verify-ssl",
        "--debug",
    ];
    let cli = args::Cli::try_parse_from(
        ["rolesanywhere-agent", "credential-process"]
            .into_iter()
            .chain(flags),
    )
    .unwrap();
    let Ok(settings::Settings::CredentialProcess(s)) = settings::validate(cli.command, &no_env)
    else {
        panic!("the flags are refused")
    };
    assert_eq!(
        format!("{:?}", c.profiles["tpm-1"].session),
        format!("{s:?}")
    );
}

#[test]
fn defaults_are_the_flags_defaults_and_the_agents_own_uid() {
    let c = ok(&profile(""));
    assert_eq!(c.socket, None);
    assert_eq!(c.socket_group, None);
    assert_eq!(c.metrics_listen, None);
    let web = &c.profiles["web"];
    assert_eq!(web.allow_uids, [ids::effective_uid()]);
    assert!(web.allow_gids.is_empty());
    assert!(web.serve.is_none());
    assert_eq!(web.session.request.duration_seconds, 3600);
    assert_eq!(web.session.client.connect_timeout, Duration::from_secs(5));
    assert_eq!(web.session.client.timeout, Duration::from_secs(30));
    assert!(web.session.client.verify_tls);
    assert_eq!(web.session.request.region, "eu-west-1");
    // Only groups: the agent's uid is not added.
    let c = ok(&profile("allow_gids = [\"root\"]\n"));
    assert!(c.profiles["web"].allow_uids.is_empty());
    assert_eq!(c.profiles["web"].allow_gids, [0]);
    // Listeners: hop limit 64, no container endpoint.
    let c = ok(&profile("listen = [\"127.0.0.1:0\"]\n"));
    let serve = c.profiles["web"].serve.clone().unwrap();
    assert_eq!(serve.hop_limit, 64);
    assert_eq!(serve.container_token_file, None);
}

#[test]
fn names_resolve_through_the_user_and_group_databases() {
    let c = ok(&profile(
        "allow_uids = [\"root\", 0, \"0\"]\nallow_gids = [\"root\", 4294967294]\n",
    ));
    assert_eq!(c.profiles["web"].allow_uids, [0, 0, 0]);
    assert_eq!(c.profiles["web"].allow_gids, [0, 4294967294]);
    // Independent of the lookup: /etc/passwd says who root is.
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let root = passwd.lines().find(|l| l.starts_with("root:")).unwrap();
    assert_eq!(root.split(':').nth(2), Some("0"));

    let text = profile("allow_uids = [\n  \"root\",\n  \"no-such-user-ra-test\",\n]\n");
    let shown = assert_error(
        &text,
        4,
        "profiles.web.allow_uids[1]",
        "no such user in the system's user database",
    );
    assert!(fail(&text).hint().unwrap().contains("getent"), "{shown}");
    assert_error(
        &profile("allow_gids = [\"no-such-group-ra-test\"]\n"),
        2,
        "profiles.web.allow_gids[0]",
        "no such group",
    );
    assert_error(
        &format!("socket_group = \"no-such-group-ra-test\"\n{}", profile("")),
        1,
        "socket_group",
        "no such group",
    );
    for bad in ["-1", "4294967295", "\"4294967295\""] {
        assert_error(
            &profile(&format!("allow_uids = [{bad}]\n")),
            2,
            "profiles.web.allow_uids[0]",
            "out of range: ids are 0 to 4294967294",
        );
    }
    assert_error(
        &profile("allow_uids = []\nallow_gids = []\n"),
        2,
        "profiles.web.allow_uids",
        "the list is empty",
    );
    // One empty list alone would otherwise fall back to the agent's own uid.
    assert_error(
        &profile("allow_gids = [0]\nallow_uids = []\n"),
        3,
        "profiles.web.allow_uids",
        "the list is empty",
    );
    assert_error(
        &profile("allow_gids = []\n"),
        2,
        "profiles.web.allow_gids",
        "the list is empty",
    );
}

#[test]
fn unknown_keys_name_their_line_and_the_nearest_key() {
    let text = format!(
        "socket = \"/s\"\n{}",
        profile("tpm_key_pasword_file = \"/p\"\n")
    );
    assert_error(&text, 3, "profiles.web.tpm_key_pasword_file", "unknown key");
    assert_eq!(
        fail(&text).hint().as_deref(),
        Some("did you mean tpm_key_password_file? (the keys are listed in docs/agent.md)")
    );
    let text = format!("sockett = \"/s\"\n{}", profile(""));
    assert_error(&text, 1, "sockett", "unknown key");
    assert!(fail(&text).hint().unwrap().contains("socket?"));
    // A nested table where a key belongs.
    assert_error(
        &format!("{}[profiles.web.extra]\nx = 1\n", profile("")),
        7,
        "profiles.web.extra",
        "unknown key",
    );
    // A typo of a file key is that, not a secret; nor is a file key we do not have.
    for (key, hint) in [
        (
            "tpm_key_password_files",
            "did you mean tpm_key_password_file?",
        ),
        ("pin_file", "the keys here are certificate, private_key,"),
    ] {
        let text = profile(&format!("{key} = \"/p\"\n"));
        assert_error(&text, 2, &format!("profiles.web.{key}"), "unknown key");
        assert!(fail(&text).hint().unwrap().starts_with(hint), "{key}");
    }
    // `with_proxy` is a flag for compatibility only; the agent has no such key.
    assert_error(
        &profile("with_proxy = true\n"),
        2,
        "profiles.web.with_proxy",
        "unknown key",
    );
}

#[test]
fn wrong_types_name_the_expected_type() {
    assert_error(
        &profile("reuse_pin = \"yes\"\n"),
        2,
        "profiles.web.reuse_pin",
        "invalid type: string, expected true or false",
    );
    assert_error(
        &profile("session_duration = \"3600\"\n"),
        2,
        "profiles.web.session_duration",
        "invalid type: string, expected an integer",
    );
    assert_error(
        &profile("intermediates = 5\n"),
        2,
        "profiles.web.intermediates",
        "invalid type: integer, expected a string (a path)",
    );
    assert_error(
        &profile("listen = \"127.0.0.1:1\"\n"),
        2,
        "profiles.web.listen",
        "invalid type: string, expected an array",
    );
    assert_error(
        &format!("{}\n[profiles.db]\n", profile("")),
        8,
        "profiles.db",
        "missing keys certificate, private_key, trust_anchor_arn, profile_arn and role_arn",
    );
    assert_error(
        "profiles = 3\n",
        1,
        "profiles",
        "invalid type: integer, expected a table",
    );
    assert_error(
        "[profiles]\nweb = 3\n",
        2,
        "profiles.web",
        "invalid type: integer, expected a table of profile keys",
    );
}

#[test]
fn missing_keys_are_all_named_in_key_terms() {
    let text = "# c\n\n[profiles.web]\ncertificate = \"/c.pem\"\n";
    let shown = assert_error(
        text,
        3,
        "profiles.web",
        "missing keys private_key, trust_anchor_arn, profile_arn and role_arn",
    );
    assert!(!shown.contains("--"), "{shown}");
    assert!(
        fail(text)
            .hint()
            .unwrap()
            .starts_with("private_key may be left out when certificate is a pkcs11: URI")
    );
    // The key is found on the certificate's token: not missing.
    let text = profile("").replace("private_key = \"/etc/ra/web.key\"\n", "");
    assert_error(
        &text
            .replace("/etc/ra/web.pem", "pkcs11:token=t")
            .replace(&format!("role_arn = \"{RO}\"\n"), ""),
        1,
        "profiles.web",
        "missing key role_arn",
    );
}

#[test]
fn bad_arns_regions_and_numbers_name_their_key_and_line() {
    let text = profile("").replace("role/web", "rol/web");
    let shown = assert_error(
        &text,
        6,
        "profiles.web.role_arn",
        "not a role ARN: resource ",
    );
    assert!(!shown.contains("--role-arn"), "{shown}");
    assert_eq!(
        fail(&text).hint().as_deref(),
        Some("write it as arn:aws:iam::ACCOUNT:role/NAME")
    );
    assert_error(
        &profile("").replace("eu-west-1:111122223333:trust", "eu-west-1:1111:trust"),
        4,
        "profiles.web.trust_anchor_arn",
        "not a trust anchor ARN: account \"1111\" must be 12 digits",
    );
    assert_error(
        &profile("").replace(
            "eu-west-1:111122223333:profile",
            "us-east-1:111122223333:profile",
        ),
        5,
        "profiles.web.profile_arn",
        "trust anchor is in region eu-west-1 but profile is in region us-east-1",
    );
    assert_error(
        &profile("\n\nregion = \"eu-west-1-fips\"\n"),
        4,
        "profiles.web.region",
        "not a region name like us-east-1",
    );
    for (line, expect) in [
        (
            "session_duration = 899",
            "out of range: give 900 to 43200 seconds",
        ),
        (
            "session_duration = 43201",
            "out of range: give 900 to 43200 seconds",
        ),
        (
            "connect_timeout = 0",
            "out of range: give at least 1 second",
        ),
        ("timeout = -5", "out of range: give at least 1 second"),
        ("tpm_timeout = 3601", "out of range: give 1 to 3600 seconds"),
        ("role_session_name = \"a b\"", "invalid session name"),
        (
            "endpoint = \"rolesanywhere.example\"",
            "invalid endpoint: the scheme is missing",
        ),
        (
            "pkcs11_lib = \"pkcs11:token=t\"",
            "takes a file, not a pkcs11: URI",
        ),
        (
            "use_fips_endpoint = 1",
            "invalid type: integer, expected true or false",
        ),
    ] {
        let key = line.split(' ').next().unwrap();
        assert_error(
            &profile(&format!("{line}\n")),
            2,
            &format!("profiles.web.{key}"),
            expect,
        );
    }
    let text = profile("use_fips_endpoint = true\n")
        .replace("eu-west-1:", "cn-north-1:")
        .replace("arn:aws:rolesanywhere", "arn:aws-cn:rolesanywhere");
    assert_error(
        &text,
        2,
        "profiles.web.use_fips_endpoint",
        "there is no FIPS endpoint for region cn-north-1",
    );
}

#[test]
fn listeners_are_checked() {
    for (line, key, expect) in [
        (
            "listen = []",
            "profiles.web.listen",
            "0 addresses given: give 1 to 32",
        ),
        (
            "listen = [\"127.0.0.1:1\", \"localhost:1\"]",
            "profiles.web.listen[1]",
            "not an address",
        ),
        (
            "listen = [\"127.0.0.1\"]",
            "profiles.web.listen[0]",
            "not an address",
        ),
        (
            "hop_limit = 2",
            "profiles.web.hop_limit",
            "applies to the profile's listeners",
        ),
        (
            "container_token_file = \"/t\"",
            "profiles.web.container_token_file",
            "applies to the profile's listeners",
        ),
        (
            "listen = [\"127.0.0.1:1\"]\nhop_limit = 0",
            "profiles.web.hop_limit",
            "out of range: give 1 to 255",
        ),
        (
            "listen = [\"127.0.0.1:1\"]\nhop_limit = 256",
            "profiles.web.hop_limit",
            "out of range: give 1 to 255",
        ),
    ] {
        let line_no = 1 + line.lines().count();
        assert_error(&profile(&format!("{line}\n")), line_no, key, expect);
    }
    // Listeners serve every local process: allow lists beside them are refused.
    assert_error(
        &profile("listen = [\"127.0.0.1:1\"]\nallow_uids = [0]\n"),
        3,
        "profiles.web.allow_uids",
        "cannot restrict a profile that has listen",
    );
    assert_error(
        &profile("allow_gids = [0]\nlisten = [\"127.0.0.1:1\"]\n"),
        2,
        "profiles.web.allow_gids",
        "cannot restrict a profile that has listen",
    );
    let many: Vec<String> = (0..33)
        .map(|i| format!("\"127.0.0.1:{}\"", 9000 + i))
        .collect();
    assert_error(
        &profile(&format!("listen = [{}]\n", many.join(", "))),
        2,
        "profiles.web.listen",
        "33 addresses given",
    );
    assert_error(
        &format!("metrics_listen = \"9912\"\n{}", profile("")),
        1,
        "metrics_listen",
        "not an address",
    );
}

#[test]
fn syntax_errors_and_duplicate_keys_name_their_line() {
    let text = profile("region = \"eu-west-1\"\nregion = \"eu-west-1\"\n");
    let e = fail(&text);
    assert_eq!(
        e.to_string(),
        "/etc/rolesanywhere/agent.toml:3: duplicate key"
    );
    let text = format!("{}\n[profiles.web]\n", profile(""));
    assert_eq!(
        fail(&text).to_string(),
        "/etc/rolesanywhere/agent.toml:8: duplicate key"
    );
    let text = profile("\nregion = eu-west-1\n");
    assert_eq!(
        fail(&text).to_string(),
        "/etc/rolesanywhere/agent.toml:3: string values must be quoted, expected literal string"
    );
}

#[test]
fn profile_names_are_restricted() {
    for name in [
        "\"\"",
        "\"a b\"",
        "\"é\"",
        &format!("\"{}\"", "a".repeat(65)),
    ] {
        let text = format!(
            "# x\n{}",
            profile("").replace("[profiles.web]", &format!("[profiles.{name}]"))
        );
        let key = key_path(&["profiles".into(), Seg::from(name.trim_matches('"'))]);
        let shown = assert_error(&text, 2, &key, "invalid profile name");
        assert!(!shown.contains('\n'), "{shown}");
    }
    let text = format!(
        "# x\n{}",
        profile("").replace("[profiles.web]", "[profiles.\"a\\u001b[31m\"]")
    );
    let shown = fail(&text).to_string();
    assert!(!shown.contains('\u{1b}'), "escaped: {shown}");
    // The longest name and every allowed character.
    let name = format!("A-z_0.{}", "9".repeat(58));
    let c = ok(&profile("").replace("[profiles.web]", &format!("[profiles.\"{name}\"]")));
    assert!(c.profiles.contains_key(&name));
}

#[test]
fn nothing_to_serve_is_refused() {
    assert_eq!(
        fail("socket = \"/s\"\n").to_string(),
        "/etc/rolesanywhere/agent.toml: no profiles: nothing to serve"
    );
    assert_error(
        "\n[profiles]\n",
        2,
        "profiles",
        "no profiles: nothing to serve",
    );
    assert!(fail("").hint().unwrap().contains("[profiles.NAME]"));
}

#[test]
fn a_missing_or_unreadable_file_is_named_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("agent.toml");
    let e = load(&missing, &no_env).unwrap_err();
    let shown = crate::text::error_chain(&e);
    assert_eq!(
        shown,
        format!(
            "cannot read the agent configuration {}: No such file or directory (os error 2)",
            missing.display()
        )
    );
    assert!(e.hint().unwrap().contains("--config"), "{shown}");
    let e = load(dir.path(), &no_env).unwrap_err();
    assert!(
        crate::text::error_chain(&e).contains("not a regular file"),
        "{e}"
    );
    // A real file: read, relative paths shown absolute.
    std::fs::write(&missing, profile("")).unwrap();
    let c = load(&missing, &no_env).unwrap();
    assert_eq!(c.path, missing);
    std::fs::write(&missing, b"# \xff\n").unwrap();
    let e = load(&missing, &no_env).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}:1: not valid UTF-8 (TOML files are)", missing.display())
    );
}

#[test]
fn secret_values_are_refused_pointing_to_the_file_key() {
    for (key, file_key) in [
        ("tpm_key_password", Some("tpm_key_password_file")),
        ("tpm_parent_password", Some("tpm_parent_password_file")),
        ("pkcs8_password", Some("pkcs8_password_file")),
        ("pkcs11_context_pin", Some("pkcs11_context_pin_file")),
        ("pin", None),
        ("pkcs11_pin", None),
        ("user-pin", None),
        ("PIN", None),
        ("tpmkeypassword", Some("tpm_key_password_file")),
        ("container_token", Some("container_token_file")),
        ("secret_access_key", None),
    ] {
        let text = profile(&format!("{key} = \"Zq7Kx-secret\"\n"));
        let e = fail(&text);
        let shown = assert_error(
            &text,
            2,
            &format!("profiles.web.{key}"),
            "a secret is not accepted in the configuration file (the value is not shown)",
        );
        assert!(
            matches!(e.problem(), Some(Problem::Secret { file_key: f }) if *f == file_key),
            "{shown}"
        );
        let hint = e.hint().unwrap();
        match file_key {
            Some(k) => assert!(hint.ends_with(&format!("as {k}")), "{hint}"),
            None => assert!(hint.contains("pin-source=file:"), "{hint}"),
        }
    }
    let text = profile("").replace(
        "/etc/ra/web.pem",
        "pkcs11:token=t;object=k?pin-value=Zq7Kx-secret",
    );
    assert_error(
        &text,
        2,
        "profiles.web.certificate",
        "a pin-value is not accepted",
    );
    assert!(fail(&text).hint().unwrap().contains("pin-source=file:"));
}

/// A secret put anywhere it does not belong never reaches an error's Display, Debug or hint.
#[test]
fn a_misplaced_secret_is_never_shown() {
    const S: &str = "Zq7Kx";
    let lines = [
        format!("tpm_key_password = \"{S}\""),
        format!("tpm_key_pasword = \"{S}\""),
        format!("pin = {S}1"),
        format!("reuse_pin = \"{S}\""),
        format!("no_tpm_key_password = \"{S}\""),
        format!("tpm_key_password_file = 7{S}"),
        "tpm_key_password_file = 271828".to_string(),
        "hop_limit = 271828".to_string(),
        "session_duration = 271828".to_string(),
        "allow_uids = [271828271828]".to_string(),
        format!("allow_uids = [true, \"{S}\"]"),
        format!("allow_gids = [\"{S}\"]"),
        format!("listen = [\"{S}\"]"),
        format!("listen = [{{ a = \"{S}\" }}]"),
        format!("tpm_tcti = [\"{S}\"]"),
        format!("certificate = \"pkcs11:token=t?PIN-VALUE={S}\""),
        format!("private_key = \"pkcs11:token=t;object=k?pin%2Dvalue={S}\""),
        format!("pkcs11_lib = \"pkcs11:token=t&pin-value={S}\""),
        format!("endpoint = \"https://u:{S}@h\""),
        format!("role_session_name = \"{S} x\""),
        format!("region = \"{S}\""),
        format!("role_arn = \"{S}\""),
        format!(
            "trust_anchor_arn = \"arn:aws:rolesanywhere:eu-west-1:111122223333:trust-anchor/x?pin-value={S}\""
        ),
        format!("tpm_key_password_file = \"{S}\n"),
        format!("tpm_key_password_file = '''{S}"),
        S.to_string(),
        format!("x = \"\\q{S}\""),
        format!("extra = {{ pin = \"{S}\" }}"),
        format!("[profiles.web.tpm_key_password]\nvalue = \"{S}\""),
    ];
    for line in &lines {
        // The secret as the last key of the profile, and as the first, in place of the key given
        // in the profile already (a duplicate key would be the error instead).
        let key = line.split([' ', '\n']).next().unwrap();
        let base: String = profile("")
            .split_inclusive('\n')
            .filter(|l| !l.starts_with(&format!("{key} =")))
            .collect();
        let first = base.replacen("]\n", &format!("]\n{line}\n"), 1);
        for text in [format!("{base}{line}\n"), first] {
            let e = fail(&text);
            if std::env::var_os("SHOW_ERRORS").is_some() {
                eprintln!("{e}");
            }
            let all = format!(
                "{e}\n{e:?}\n{}\n{}",
                e.hint().unwrap_or_default(),
                crate::text::error_chain(&e)
            );
            assert!(!all.contains(S), "{line}:\n{all}");
            assert!(!all.contains("271828"), "{line}:\n{all}");
        }
    }
    // The top level too.
    for line in [
        format!("socket = {S}1"),
        format!("socket_group = [\"{S}\"]"),
        format!("metrics_listen = \"{S}\""),
    ] {
        let e = fail(&format!("{line}\n{}", profile("")));
        let all = format!("{e}\n{e:?}\n{}", e.hint().unwrap_or_default());
        assert!(!all.contains(S), "{line}:\n{all}");
    }
}

#[test]
fn debug_of_the_configuration_holds_no_raw_table() {
    let c = ok(FULL);
    let shown = format!("{c:?}");
    assert!(shown.contains("ProfileConfig"), "{shown}");
    assert!(!shown.contains("raw"), "{shown}");
}

#[test]
fn same_as_compares_the_tables_as_written() {
    let a = ok(FULL);
    let b = ok(FULL);
    for (name, p) in &a.profiles {
        assert!(p.same_as(&b.profiles[name]), "{name}");
    }
    // Comments, order and layout are not changes; values are.
    let reordered = FULL.replace("# The agent's configuration.\n", "").replace(
        "session_duration = 900\nrole_session_name = \"web-host\"\n",
        "role_session_name = \"web-host\" # the host\nsession_duration = 900\n",
    );
    let c = ok(&reordered);
    assert!(a.profiles["web"].same_as(&c.profiles["web"]));
    let changed = FULL.replace("session_duration = 900", "session_duration = 901");
    let c = ok(&changed);
    assert!(!a.profiles["web"].same_as(&c.profiles["web"]));
    assert!(a.profiles["db.prod"].same_as(&c.profiles["db.prod"]));
    assert!(a.profiles["tpm-1"].same_as(&c.profiles["tpm-1"]));
    // A key added, even one set to its default, is a change.
    let c = ok(&FULL.replace("[profiles.tpm-1]\n", "[profiles.tpm-1]\ntimeout = 30\n"));
    assert!(!a.profiles["tpm-1"].same_as(&c.profiles["tpm-1"]));
    // Another profile's equal table is not the same profile.
    let c = ok(&FULL.replace("[profiles.tpm-1]", "[profiles.tpm-2]"));
    assert!(!a.profiles["tpm-1"].same_as(&c.profiles["tpm-2"]));
}

#[test]
fn unquoted_cuts_every_quoted_value() {
    assert_eq!(
        unquoted("invalid type: string \"a\\\"b`c\", expected a boolean"),
        "invalid type: string, expected a boolean"
    );
    assert_eq!(
        unquoted("invalid type: integer `12` as i128, expected i64"),
        "invalid type: integer as i128, expected i64"
    );
    // An unterminated quote swallows the rest rather than showing it.
    assert_eq!(unquoted("x \"secret"), "x");
}

#[test]
fn nearest_key_is_within_two_edits() {
    assert_eq!(nearest("rol_arn", PROFILE_KEYS), Some("role_arn"));
    assert_eq!(nearest("certificat", PROFILE_KEYS), Some("certificate"));
    assert_eq!(nearest("something_else", PROFILE_KEYS), None);
    assert_eq!(nearest("x", TOP_KEYS), None);
}

/// docs/agent.md's "Configuration file" section has a table row for every key the file accepts,
/// and no row for one it does not.
#[test]
fn docs_list_every_key() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/agent.md")).unwrap();
    let start = doc
        .find("\n## Configuration file\n")
        .expect("docs/agent.md has a Configuration file section");
    let section = &doc[start + 1..];
    let section = section[1..]
        .find("\n## ")
        .map_or(section, |end| &section[..end + 1]);
    let rows: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .collect();
    let mut keys: Vec<&str> = TOP_KEYS.iter().chain(PROFILE_KEYS).copied().collect();
    let mut rows_sorted = rows.clone();
    keys.sort_unstable();
    rows_sorted.sort_unstable();
    assert_eq!(rows_sorted, keys);
}
