//! doctor: the tags (4), trust-policy (5) and session-policy (6) checks, run as the CLI.
//!
//! They read the certificate the identity check (1) leaves in the doctor's context.

use crate::common::*;

const SEEDS_CN: &str = "backup-server.corp.example.com";
/// The seeds' trust anchor ARN (emulator/testdata/seeds-trust-policy.json).
const SEEDS_ANCHOR: &str = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/abcd1234-ef56-gh78-ij90-klmnopqrstuv";
const SEEDS_POLICY: &str = include_str!("../../emulator/testdata/seeds-trust-policy.json");

/// The seeds' session policy (the S3 backup example).
const SEEDS_SESSION_POLICY: &str =
    include_str!("../../emulator/testdata/seeds-session-policy.json");

/// A key `name.key` and a certificate `name.pem` with subject `subject` and `sans`.
fn issue(env: &Env, name: &str, subject: &str, sans: &[&str]) {
    let public = env.openssl_key(
        name,
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    env.issue_with(&env.ca, name, public, |req| {
        req.subject = subject.to_string();
        req.sans = sans.iter().map(|s| s.to_string()).collect();
    });
}

/// `doctor` for `name` with the trust anchor ARN `anchor` and `extra` flags.
fn doctor(env: &Env, name: &str, anchor: &str, extra: &[&str]) -> Run {
    let cert = env.p(&format!("{name}.pem"));
    let key = env.p(&format!("{name}.key"));
    let mut args = vec![
        "doctor",
        "--certificate",
        &cert,
        "--private-key",
        &key,
        "--trust-anchor-arn",
        anchor,
        "--profile-arn",
        "arn:aws:rolesanywhere:us-east-1:123456789012:profile/abcd1234-0000-0000-0000-000000000000",
        "--role-arn",
        "arn:aws:iam::123456789012:role/OnPremBackupRole",
    ];
    args.extend_from_slice(extra);
    let run = env.run(&args, &[]);
    eprintln!(
        "--- doctor (exit {}):\n{}{}",
        run.code, run.stdout, run.stderr
    );
    run
}

/// The report's lines of check `name` (`passed  5 trust-policy   …`).
fn lines<'a>(run: &'a Run, name: &str) -> Vec<&'a str> {
    run.stdout
        .lines()
        .filter(|l| {
            l.get(10..)
                .is_some_and(|rest| rest.starts_with(&format!("{name} ")))
        })
        .collect()
}

fn write(env: &Env, file: &str, text: &str) -> String {
    std::fs::write(env.path(file), text).unwrap();
    env.p(file)
}

#[test]
fn doctor_tags_show_the_default_mapping_and_the_dropped_values() {
    let env = Env::new();
    // openssl, not the emulator's CA: a subject with two OUs (the CA keeps one per attribute).
    // The tags check reads the certificate only, so a self-signed one will do.
    env.openssl_key(
        "web",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    openssl(&[
        "req",
        "-new",
        "-x509",
        "-key",
        &env.p("web.key"),
        "-out",
        &env.p("web.pem"),
        "-days",
        "30",
        "-subj",
        "/CN=web-1.example.com/OU=ops/OU=eu/O=Example; Corp",
        "-addext",
        "subjectAltName=DNS:web-1.example.com,DNS:web.example.com,URI:spiffe://example.com/web",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
    ]);
    let run = doctor(&env, "web", SEEDS_ANCHOR, &[]);
    let tags = lines(&run, "tags");
    assert!(tags[0].starts_with("passed  4 tags"), "{tags:?}");
    for want in [
        "aws:PrincipalTag/x509Subject/CN=web-1.example.com",
        "aws:PrincipalTag/x509Subject/OU=ops/eu",
        "aws:PrincipalTag/x509Issuer/CN=web-1.example.com",
        "aws:PrincipalTag/x509SAN/DNS=web-1.example.com",
        "aws:PrincipalTag/x509SAN/URI=spiffe://example.com/web",
        "sts:SourceIdentity=CN=web-1.example.com",
    ] {
        assert!(tags[0].contains(want), "{want} not in {}", tags[0]);
    }
    assert!(
        !tags[0].contains("web.example.com,"),
        "only the first DNS SAN: {}",
        tags[0]
    );
    // O=Example; Corp has a ';', outside the session-tag characters: dropped, with a warning.
    assert!(!tags[0].contains("x509Subject/O="), "{}", tags[0]);
    let dropped = tags
        .iter()
        .find(|l| l.contains("aws:PrincipalTag/x509Subject/O:"))
        .unwrap_or_else(|| panic!("no dropped line: {tags:?}"));
    assert!(dropped.starts_with("warning 4 tags"), "{dropped}");
    assert!(dropped.contains("dropped: the value has ';'"), "{dropped}");
    assert!(
        dropped.contains("a StringNotEquals on it is true"),
        "{dropped}"
    );
}

#[test]
fn doctor_passes_the_seeds_trust_policy_for_its_cn_and_trust_anchor() {
    let env = Env::new();
    issue(&env, "backup", &format!("CN={SEEDS_CN}"), &[]);
    let policy = write(&env, "trust.json", SEEDS_POLICY);
    let run = doctor(&env, "backup", SEEDS_ANCHOR, &["--trust-policy", &policy]);
    let tp = lines(&run, "trust-policy");
    assert_eq!(tp.len(), 1, "{tp:?}");
    assert!(tp[0].starts_with("passed  5 trust-policy"), "{}", tp[0]);
    assert!(tp[0].contains("statement 0"), "{}", tp[0]);
    assert!(tp[0].contains("allows sts:AssumeRole"), "{}", tp[0]);
    assert!(
        tp[0].contains(&format!(
            "StringEquals aws:PrincipalTag/x509Subject/CN holds ({SEEDS_CN})"
        )),
        "{}",
        tp[0]
    );
    assert!(tp[0].contains("ArnEquals aws:SourceArn holds"), "{}", tp[0]);
    assert!(!run.stdout.contains("failed "), "{}", run.stdout);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn doctor_fails_the_seeds_trust_policy_for_another_cn_quoting_both() {
    let env = Env::new();
    issue(&env, "local", "CN=local.example.com", &[]);
    let policy = write(&env, "trust.json", SEEDS_POLICY);
    let run = doctor(&env, "local", SEEDS_ANCHOR, &["--trust-policy", &policy]);
    let tp = lines(&run, "trust-policy");
    assert_eq!(tp.len(), 1, "{tp:?}");
    assert!(tp[0].starts_with("failed  5 trust-policy"), "{}", tp[0]);
    assert!(
        tp[0].contains(&format!(
            "StringEquals aws:PrincipalTag/x509Subject/CN: the policy wants {SEEDS_CN}, this \
             certificate gives local.example.com"
        )),
        "{}",
        tp[0]
    );
    assert!(
        tp[0].contains("; fix: issue a certificate whose x509Subject/CN"),
        "{}",
        tp[0]
    );
    // The trust anchor matches: only the CN is named.
    assert!(!tp[0].contains("ArnEquals"), "{}", tp[0]);
    assert_eq!(run.code, 1);
}

#[test]
fn doctor_fails_the_seeds_trust_policy_for_another_trust_anchor() {
    let env = Env::new();
    issue(&env, "backup", &format!("CN={SEEDS_CN}"), &[]);
    let policy = write(&env, "trust.json", SEEDS_POLICY);
    let other = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0000aaaa-1111-2222-3333-444455556666";
    let run = doctor(&env, "backup", other, &["--trust-policy", &policy]);
    let tp = lines(&run, "trust-policy");
    assert!(tp[0].starts_with("failed  5 trust-policy"), "{}", tp[0]);
    assert!(
        tp[0].contains(&format!(
            "ArnEquals aws:SourceArn: the policy wants {SEEDS_ANCHOR}, the trust anchor ARN is {other}"
        )),
        "{}",
        tp[0]
    );
    assert!(!tp[0].contains("StringEquals"), "{}", tp[0]);
    assert_eq!(run.code, 1);
}

/// Roles Anywhere always asks for the session tags and the source identity: a trust policy that
/// allows sts:AssumeRole but not sts:TagSession or sts:SetSourceIdentity is refused (the emulator
/// refuses it too), so doctor fails it, naming the action and the fix.
#[test]
fn doctor_fails_a_trust_policy_without_tag_session_or_set_source_identity() {
    let env = Env::new();
    issue(&env, "backup", &format!("CN={SEEDS_CN}"), &[]);
    for (action, removed) in [
        ("sts:TagSession", ",\n        \"sts:TagSession\""),
        (
            "sts:SetSourceIdentity",
            ",\n        \"sts:SetSourceIdentity\"",
        ),
    ] {
        let without = SEEDS_POLICY.replace(removed, "");
        assert_ne!(without, SEEDS_POLICY);
        let policy = write(&env, "trust.json", &without);
        let run = doctor(&env, "backup", SEEDS_ANCHOR, &["--trust-policy", &policy]);
        let tp = lines(&run, "trust-policy");
        assert_eq!(tp.len(), 2, "{tp:?}");
        assert!(tp[0].starts_with("passed  5 trust-policy"), "{}", tp[0]);
        assert!(tp[1].starts_with("failed  5 trust-policy"), "{}", tp[1]);
        assert!(
            tp[1].contains(&format!(
                "does not allow {action} (statement 0 does not list {action})"
            )),
            "{}",
            tp[1]
        );
        assert!(
            tp[1].contains("CreateSession will be refused (AccessDenied)"),
            "{}",
            tp[1]
        );
        assert!(
            tp[1].contains(&format!("fix: add \"{action}\"")),
            "{}",
            tp[1]
        );
        assert_eq!(run.code, 1, "{run:?}");
    }
}

#[test]
fn doctor_names_the_position_of_a_broken_trust_policy() {
    let env = Env::new();
    issue(&env, "backup", &format!("CN={SEEDS_CN}"), &[]);
    let bad = write(
        &env,
        "bad.json",
        "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [\n}",
    );
    let run = doctor(&env, "backup", SEEDS_ANCHOR, &["--trust-policy", &bad]);
    let tp = lines(&run, "trust-policy");
    assert!(
        tp[0].starts_with(&format!(
            "failed  5 trust-policy   trust policy {bad}: not JSON at line 4 column 1: expected value; fix: "
        )),
        "{}",
        tp[0]
    );
    let wrong = write(
        &env,
        "wrong.json",
        r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"rolesanywhere.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"aws:SourceArn":{"x":1}}}}]}"#,
    );
    let run = doctor(&env, "backup", SEEDS_ANCHOR, &["--trust-policy", &wrong]);
    let tp = lines(&run, "trust-policy");
    assert!(tp[0].contains("at Statement[0].Condition.StringEquals.aws:SourceArn: a condition value is a string, number or boolean, not an object"), "{}", tp[0]);
    assert_eq!(run.code, 1);
    // Nested beyond serde_json's limit: refused with a position, no crash.
    let deep = write(
        &env,
        "deep.json",
        &format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
    );
    let run = doctor(
        &env,
        "backup",
        SEEDS_ANCHOR,
        &["--trust-policy", &deep, "--session-policy", &deep],
    );
    assert!(
        lines(&run, "trust-policy")[0]
            .contains("not JSON at line 1 column 128: recursion limit exceeded;"),
        "{}",
        run.stdout
    );
    assert!(
        lines(&run, "session-policy")[0].starts_with("failed  6 session-policy"),
        "{}",
        run.stdout
    );
    assert_eq!(run.code, 1);
}

#[test]
fn doctor_lists_what_the_seeds_session_policy_allows() {
    let env = Env::new();
    issue(&env, "backup", &format!("CN={SEEDS_CN}"), &[]);
    let sp = write(&env, "session.json", SEEDS_SESSION_POLICY);
    let run = doctor(&env, "backup", SEEDS_ANCHOR, &["--session-policy", &sp]);
    let l = lines(&run, "session-policy");
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(l[0].starts_with("passed  6 session-policy"), "{}", l[0]);
    let packed = SEEDS_SESSION_POLICY
        .chars()
        .filter(|c| !c.is_whitespace())
        .count();
    assert!(
        l[0].contains(&format!("{packed} of 2048 characters packed")),
        "{}",
        l[0]
    );
    assert!(
        l[0].contains(
            "Allow s3:PutObject, s3:GetObject, s3:ListBucket on arn:aws:s3:::corp-backups-prod, \
             arn:aws:s3:::corp-backups-prod/*"
        ),
        "{}",
        l[0]
    );
    assert_eq!(run.code, 0);
}

#[test]
fn doctor_fails_a_session_policy_over_the_sts_limit() {
    let env = Env::new();
    issue(&env, "backup", &format!("CN={SEEDS_CN}"), &[]);
    let buckets: Vec<String> = (0..60)
        .map(|i| format!("\"arn:aws:s3:::corp-backups-prod-{i:03}/*\""))
        .collect();
    let big = format!(
        r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow", "Action": "s3:GetObject", "Resource": [{}]}}]}}"#,
        buckets.join(", ")
    );
    let sp = write(&env, "big.json", &big);
    let run = doctor(&env, "backup", SEEDS_ANCHOR, &["--session-policy", &sp]);
    let l = lines(&run, "session-policy");
    assert_eq!(l.len(), 1, "{l:?}");
    assert!(l[0].starts_with("failed  6 session-policy"), "{}", l[0]);
    let packed = big.chars().filter(|c| *c != ' ').count();
    assert!(packed > 2048);
    assert!(
        l[0].contains(&format!("{packed} characters once packed")),
        "{}",
        l[0]
    );
    assert!(l[0].contains("over STS's limit of 2048"), "{}", l[0]);
    assert_eq!(run.code, 1);
}

#[test]
fn doctor_skips_the_policy_checks_without_their_files() {
    let env = Env::new();
    issue(&env, "backup", &format!("CN={SEEDS_CN}"), &[]);
    let run = doctor(&env, "backup", SEEDS_ANCHOR, &[]);
    assert!(
        lines(&run, "trust-policy")[0].starts_with("skipped 5 trust-policy"),
        "{}",
        run.stdout
    );
    assert!(
        lines(&run, "trust-policy")[0].contains("give --trust-policy FILE"),
        "{}",
        run.stdout
    );
    assert!(
        lines(&run, "session-policy")[0].contains("give --session-policy FILE"),
        "{}",
        run.stdout
    );
}

/// The tags doctor announces are the tags the emulator sets: its own mapping code, written
/// separately, decides the same for a certificate with many kinds of attribute (several OUs,
/// DC, UID, C/ST/L, an e-mail address, DNS, URI and directory-name SANs) and a value STS drops.
#[test]
fn doctor_announces_the_tags_the_emulator_sets() {
    let env = Env::new();
    env.openssl_key(
        "many",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    openssl(&[
        "req",
        "-new",
        "-key",
        &env.p("many.key"),
        "-out",
        &env.p("many.csr"),
        "-subj",
        "/DC=com/DC=example/C=DE/ST=Berlin/L=Berlin/O=Example; Corp/OU=ops/OU=eu/UID=u-17/\
         emailAddress=ops@example.com/CN=many.example.com",
    ]);
    std::fs::write(
        env.path("many.ext"),
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n\
         subjectAltName=DNS:many.example.com,DNS:second.example.com,\
         URI:spiffe://example.com/many,dirName:san_dn\n[san_dn]\nCN=dir-name\nOU=dir-ou\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &env.p("many.csr"),
        "-CA",
        &env.p("root/ca.pem"),
        "-CAkey",
        &env.p("root/ca.key"),
        "-set_serial",
        "4242",
        "-days",
        "30",
        "-extfile",
        &env.p("many.ext"),
        "-out",
        &env.p("many.pem"),
    ]);

    let emu = env.emulator();
    let run = env.credential_process(&emu.url(), "many", &[]);
    let key_id = run.credentials()["AccessKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let session = emu.session(&key_id).expect("the emulator kept the session");

    let report = doctor(&env, "many", SEEDS_ANCHOR, &[]);
    let tags = lines(&report, "tags");
    let announced = tags[0];
    assert!(
        announced.contains(&format!(
            "will set {} session tag(s)",
            session.principal_tags.len()
        )),
        "the emulator set {:?}; doctor: {announced}",
        session.principal_tags
    );
    for (key, value) in &session.principal_tags {
        let tag = format!("aws:PrincipalTag/{key}={value}");
        assert!(announced.contains(&tag), "{tag} not in {announced}");
    }
    assert!(
        announced.contains(&format!("sts:SourceIdentity={}", session.source_identity)),
        "{} not in {announced}",
        session.source_identity
    );
}
