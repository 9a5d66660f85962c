//! The wiring of attribute mapping and trust-policy evaluation, on certificates issued in-test.

use super::*;
use crate::ca::{Ca, IssueRequest, KeySource, KeyType};
use crate::config::{Profile, Role};
use crate::mapping::{AttributeMappings, CertificateField};
use x509_parser::prelude::{FromDer, X509Certificate};

const ANCHOR: &str = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/11111111-2222-4333-8444-555555555555";
const PROFILE: &str =
    "arn:aws:rolesanywhere:us-east-1:123456789012:profile/66666666-7777-4888-9999-aaaaaaaaaaaa";
const ROLE: &str = "arn:aws:iam::123456789012:role/test/EmulatorRole";

/// The seeds' trust policy: CN `allowed-host` through [`ANCHOR`].
fn seed_policy() -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"RolesAnywhere","Effect":"Allow",
        "Principal":{{"Service":"rolesanywhere.amazonaws.com"}},
        "Action":["sts:AssumeRole","sts:SetSourceIdentity","sts:TagSession"],
        "Condition":{{"StringEquals":{{"aws:PrincipalTag/x509Subject/CN":"allowed-host"}},
                      "ArnEquals":{{"aws:SourceArn":"{ANCHOR}"}}}}}}]}}"#
    )
}

struct Fixture {
    _dir: tempfile::TempDir,
    ca: Ca,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::init(&dir.path().join("ca"), KeyType::EcP256, "Trust Test CA").expect("CA");
    Fixture { _dir: dir, ca }
}

/// An accepted request for a leaf with this subject and these SANs.
fn accepted(f: &Fixture, subject: &str, sans: &[&str]) -> Accepted {
    let mut req = IssueRequest::new(subject, KeySource::NewKey(KeyType::EcP256));
    req.sans = sans.iter().map(|s| s.to_string()).collect();
    let issued = f.ca.issue(&req).expect("issue leaf");
    let der = crate::pem::decode_label(&issued.cert_pem, "CERTIFICATE")
        .expect("leaf pem")
        .remove(0);
    let (_, cert) = X509Certificate::from_der(&der).expect("leaf parses");
    let subject_cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string);
    Accepted {
        serial_decimal: issued.serial_decimal.clone(),
        serial_hex: "0a0b".into(),
        subject_cn,
        trust_anchor_arn: ANCHOR.into(),
        profile_arn: PROFILE.into(),
        role_arn: ROLE.into(),
        role_session_name: None,
        duration_seconds: 900,
        leaf_der: der,
    }
}

fn config(mappings: AttributeMappings, trust_policy: Option<String>) -> Config {
    Config {
        region: "us-east-1".into(),
        trust_anchors: vec![],
        profiles: vec![Profile {
            arn: PROFILE.into(),
            role_arns: vec![ROLE.into()],
            duration_seconds: 3600,
            accept_role_session_name: false,
            enabled: true,
            session_policy: Some(r#"{"Version":"2012-10-17","Statement":[]}"#.into()),
            managed_policy_arns: vec![],
            attribute_mappings: mappings,
        }],
        roles: vec![Role {
            arn: ROLE.into(),
            max_session_duration: 3600,
            trust_policy,
        }],
        faults: vec![],
        admin: None,
        account_id: "123456789012".into(),
        state_file: None,
    }
}

fn pairs(g: &Grant) -> Vec<(&str, &str)> {
    g.principal_tags
        .tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[test]
fn tags_come_from_the_certificate_under_the_default_mappings() {
    let f = fixture();
    let acc = accepted(
        &f,
        "CN=web-01,OU=ops,O=Example",
        &["dns:web-01.example.com", "dns:web.example.com"],
    );
    let g = authorize(&acc, &config(AttributeMappings::default(), None)).expect("no policy");
    assert_eq!(
        pairs(&g),
        [
            ("x509Subject/CN", "web-01"),
            ("x509Subject/OU", "ops"),
            ("x509Subject/O", "Example"),
            ("x509Issuer/CN", "Trust Test CA"),
            ("x509SAN/DNS", "web-01.example.com"),
        ]
    );
    assert_eq!(g.source_identity, "CN=web-01");
    assert_eq!(
        g.session_policy.as_deref(),
        Some(r#"{"Version":"2012-10-17","Statement":[]}"#)
    );
    assert_eq!(g.record["trust_policy"], "none configured");
    assert_eq!(
        g.record["principal_tags"]["x509SAN/DNS"],
        "web-01.example.com"
    );
}

#[test]
fn a_mapping_change_changes_the_tags() {
    let f = fixture();
    let acc = accepted(&f, "CN=web-01,OU=ops", &["dns:web-01.example.com"]);
    let mut only_cn = AttributeMappings::empty();
    only_cn
        .put(CertificateField::Subject, &["CN".to_string()])
        .expect("put");
    let g = authorize(&acc, &config(only_cn, None)).expect("no policy");
    assert_eq!(pairs(&g), [("x509Subject/CN", "web-01")]);

    let mut no_san = AttributeMappings::default();
    no_san.delete(CertificateField::San, None);
    no_san.delete(CertificateField::Subject, Some(&["*".to_string()]));
    no_san
        .put(CertificateField::Subject, &["OU".to_string()])
        .expect("put");
    let g = authorize(&acc, &config(no_san, None)).expect("no policy");
    assert_eq!(
        pairs(&g),
        [
            ("x509Subject/OU", "ops"),
            ("x509Issuer/CN", "Trust Test CA")
        ]
    );
}

#[test]
fn a_role_not_configured_at_all_is_assumed_without_evaluation() {
    let f = fixture();
    let acc = accepted(&f, "CN=anything", &[]);
    let mut cfg = config(AttributeMappings::default(), Some(seed_policy()));
    cfg.roles.clear();
    let g = authorize(&acc, &cfg).expect("no role, no policy");
    assert_eq!(g.record["trust_policy"], "none configured");
}

#[test]
fn the_seed_policy_allows_its_cn_and_refuses_another_naming_the_condition() {
    let f = fixture();
    let cfg = config(AttributeMappings::default(), Some(seed_policy()));
    let ok = authorize(&accepted(&f, "CN=allowed-host", &[]), &cfg).expect("allowed");
    assert_eq!(ok.record["trust_policy"]["result"], "allowed");
    let actions = ok.record["trust_policy"]["actions"]
        .as_array()
        .expect("actions");
    let names: Vec<&str> = actions
        .iter()
        .map(|a| a["action"].as_str().expect("action"))
        .collect();
    assert_eq!(
        names,
        ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]
    );
    assert_eq!(actions[0]["statement"]["sid"], "RolesAnywhere");
    let by = &ok.record["trust_policy"]["decided_by"];
    assert_eq!(by["action"], "sts:AssumeRole");
    assert_eq!(
        by["conditions"][1]["key"],
        "aws:PrincipalTag/x509Subject/CN"
    );
    assert_eq!(by["conditions"][1]["request_values"][0], "allowed-host");

    let denied = authorize(&accepted(&f, "CN=other-host", &[]), &cfg).expect_err("denied");
    assert_eq!(denied.message, format!("Unable to assume role for {ROLE}."));
    assert!(
        denied.detail.contains(
            r#"StringEquals "aws:PrincipalTag/x509Subject/CN" ["allowed-host"] is false for request value ["other-host"]"#
        ),
        "{}",
        denied.detail
    );
    assert!(
        denied
            .detail
            .contains("Statement[0] (Sid \"RolesAnywhere\")")
    );
    let by = &denied.record["trust_policy"]["decided_by"];
    assert_eq!(by["action"], "sts:AssumeRole");
    assert_eq!(by["outcome"], "implicit deny");
    let miss = &by["misses"][0];
    assert_eq!(miss["statement"]["index"], 0);
    assert_eq!(miss["condition"]["operator"], "StringEquals");
    assert_eq!(miss["condition"]["key"], "aws:PrincipalTag/x509Subject/CN");
    assert_eq!(miss["condition"]["policy_values"][0], "allowed-host");
    assert_eq!(miss["condition"]["request_values"][0], "other-host");
    // The client's message says nothing about the policy.
    assert!(!denied.message.contains("allowed-host") && !denied.message.contains("Statement"));
}

#[test]
fn every_documented_action_must_be_granted() {
    let f = fixture();
    let only_assume = seed_policy().replace(
        r#"["sts:AssumeRole","sts:SetSourceIdentity","sts:TagSession"]"#,
        r#"["sts:AssumeRole","sts:SetSourceIdentity"]"#,
    );
    let cfg = config(AttributeMappings::default(), Some(only_assume));
    let d = authorize(&accepted(&f, "CN=allowed-host", &[]), &cfg).expect_err("denied");
    assert!(
        d.detail.contains("sts:TagSession implicitly denied"),
        "{}",
        d.detail
    );
    assert_eq!(
        d.record["trust_policy"]["decided_by"]["misses"][0]["reason"],
        "action does not match"
    );
}

#[test]
fn source_identity_is_a_condition_key() {
    let f = fixture();
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Principal":{"Service":"rolesanywhere.amazonaws.com"},
        "Action":["sts:AssumeRole","sts:SetSourceIdentity","sts:TagSession"],
        "Condition":{"StringLike":{"sts:SourceIdentity":"CN=build-*"}}}]}"#;
    let cfg = config(AttributeMappings::default(), Some(policy.into()));
    assert!(authorize(&accepted(&f, "CN=build-7", &[]), &cfg).is_ok());
    assert!(authorize(&accepted(&f, "CN=deploy-7", &[]), &cfg).is_err());
}

#[test]
fn a_tag_dropped_for_its_characters_is_absent_from_the_request() {
    let f = fixture();
    // `(` is outside STS's tag pattern: the CN is not mapped.
    let acc = accepted(&f, "CN=web (old)", &[]);
    let not_equals = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Principal":{"Service":"rolesanywhere.amazonaws.com"},
        "Action":["sts:AssumeRole","sts:SetSourceIdentity","sts:TagSession"],
        "Condition":{"StringNotEquals":{"aws:PrincipalTag/x509Subject/CN":"blocked"}}}]}"#;
    let g = authorize(
        &acc,
        &config(AttributeMappings::default(), Some(not_equals.into())),
    )
    .expect("StringNotEquals holds on a dropped tag");
    assert!(g.principal_tags.get("x509Subject/CN").is_none());
    let dropped = g.record["dropped_tags"][0].as_str().expect("dropped");
    assert!(dropped.starts_with("x509Subject/CN"), "{dropped}");
    let trace = &g.record["trust_policy"]["decided_by"]["conditions"][0];
    assert_eq!(trace["request_values"], Value::Null);
    assert_eq!(trace["held"], true);

    let equals = not_equals.replace("StringNotEquals", "StringEquals");
    assert!(authorize(&acc, &config(AttributeMappings::default(), Some(equals))).is_err());
}

#[test]
fn a_stored_policy_that_does_not_parse_refuses_with_its_cause() {
    let f = fixture();
    let cfg = config(
        AttributeMappings::default(),
        Some(r#"{"Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}"#.into()),
    );
    let d = authorize(&accepted(&f, "CN=allowed-host", &[]), &cfg).expect_err("refused");
    assert!(
        d.message.contains("trust policy") && d.message.contains("has no Principal"),
        "{}",
        d.message
    );
    assert_eq!(d.record["trust_policy"]["result"], "unusable");
}

#[test]
fn a_long_cn_gives_a_serial_source_identity() {
    let f = fixture();
    let long = "a".repeat(62);
    let acc = accepted(&f, &format!("CN={long}"), &[]);
    assert_eq!(source_identity(&acc), "ID=0a0b");
    let acc = accepted(&f, &format!("CN={}", &long[..61]), &[]);
    assert_eq!(source_identity(&acc), format!("CN={}", &long[..61]));
}
