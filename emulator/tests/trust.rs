//! Trust policies at CreateSession, end to end: requests signed in the test (independent signer in
//! `support`) against an in-process server whose role carries a trust policy; the principal tags
//! come from the certificate under the profile's attribute mappings.

mod support;

use std::time::Duration;

use rolesanywhere_emulator::ca::{Ca, IssueRequest, KeySource, KeyType};
use rolesanywhere_emulator::config::{AdminCredentials, Config, Profile, Role, TrustAnchor};
use rolesanywhere_emulator::mapping::AttributeMappings;
use rolesanywhere_emulator::server::{self, Running, ServeOptions, Tls};
use support::*;

const ADMIN_KEY_ID: &str = "AKIAEMULATORADMIN002";
const ADMIN_SECRET: &str = "emulator/trust+admin/0123456789abcdefghij";
const SESSION_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;

/// An Allow statement for Roles Anywhere and the three actions it needs, with this condition block.
fn allow(sid: &str, condition: &str) -> String {
    format!(
        r#"{{"Sid":"{sid}","Effect":"Allow","Principal":{{"Service":"rolesanywhere.amazonaws.com"}},
        "Action":["sts:AssumeRole","sts:SetSourceIdentity","sts:TagSession"],"Condition":{condition}}}"#
    )
}

fn policy(statements: &[String]) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        statements.join(",")
    )
}

/// The seeds' trust policy: CN `allowed-host`, and the request must come through `ANCHOR`.
fn seed_policy(anchor: &str) -> String {
    policy(&[allow(
        "SeedCondition",
        &format!(
            r#"{{"StringEquals":{{"aws:PrincipalTag/x509Subject/CN":"allowed-host"}},
                "ArnEquals":{{"aws:SourceArn":"{anchor}"}}}}"#
        ),
    )])
}

struct Env {
    _tmp: tempfile::TempDir,
    root: Ca,
    server: Running,
}

/// One anchor (a new root), one profile (default attribute mappings), the role with
/// `trust_policy` (`listed: false` leaves the role out of the configuration), and admin
/// credentials for the control plane.
fn start(trust_policy: Option<String>, listed: bool) -> Env {
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = Ca::init(&tmp.path().join("root"), KeyType::EcP256, "Trust Root").expect("root CA");
    let config = Config {
        region: REGION.into(),
        trust_anchors: vec![TrustAnchor {
            arn: ANCHOR.into(),
            certificates: der_of(&root.cert_pem()),
            enabled: true,
            crls: vec![],
        }],
        profiles: vec![Profile {
            arn: PROFILE.into(),
            role_arns: vec![ROLE.into()],
            duration_seconds: 3600,
            accept_role_session_name: false,
            enabled: true,
            session_policy: None,
            managed_policy_arns: vec![],
            attribute_mappings: AttributeMappings::default(),
        }],
        roles: if listed {
            vec![Role {
                arn: ROLE.into(),
                max_session_duration: 3600,
                trust_policy,
            }]
        } else {
            vec![]
        },
        faults: vec![],
        admin: Some(AdminCredentials {
            access_key_id: ADMIN_KEY_ID.into(),
            secret_access_key: ADMIN_SECRET.to_string().into(),
        }),
        account_id: "123456789012".into(),
        state_file: None,
    };
    let server = server::spawn(
        config,
        ServeOptions {
            listen: "127.0.0.1:0".parse().expect("addr"),
            tls: Tls::None,
        },
    )
    .expect("spawn");
    Env {
        _tmp: tmp,
        root,
        server,
    }
}

impl Env {
    /// A leaf with this subject (`CN=…,OU=…`) and SANs (`dns:…`).
    fn leaf(&self, subject: &str, sans: &[&str]) -> Identity {
        let mut req = IssueRequest::new(subject, KeySource::NewKey(KeyType::EcP256));
        req.sans = sans.iter().map(|s| s.to_string()).collect();
        identity(self.root.issue(&req).expect("issue leaf"), None)
    }

    fn create_session(&self, id: &Identity) -> Response {
        let host = self.server.url().trim_start_matches("http://").to_string();
        let signed = sign(id, &Call::new(&host, "{\"durationSeconds\":900}"));
        send(&self.server.url(), None, &signed, Duration::from_secs(10)).expect("request")
    }

    /// The last decision's message (what the decision log says decided).
    fn last_decision(&self) -> String {
        let d = self.server.decisions();
        let last = d.last().expect("a decision");
        last.message.clone()
    }

    /// `GET /_emulator/sessions/{key}` as JSON.
    fn session_view(&self, key: &str) -> serde_json::Value {
        use std::io::{Read as _, Write as _};
        let host = self.server.url().trim_start_matches("http://").to_string();
        let mut s = std::net::TcpStream::connect(&host).expect("connect");
        write!(
            s,
            "GET /_emulator/sessions/{key} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        let body = out.split_once("\r\n\r\n").expect("body").1;
        serde_json::from_str(body).expect("view JSON")
    }
}

fn access_key_id(r: &Response) -> String {
    assert_eq!(r.status, 201, "body: {}", r.body);
    r.json()["credentialSet"][0]["credentials"]["accessKeyId"]
        .as_str()
        .expect("accessKeyId")
        .to_string()
}

/// 403 `AccessDeniedException` with the service's message, which names nothing in the policy.
fn assert_trust_denied(r: &Response) {
    assert_eq!(r.status, 403, "body: {}", r.body);
    assert_eq!(r.header("x-amzn-errortype"), Some("AccessDeniedException"));
    assert_eq!(
        r.json()["message"],
        format!("Unable to assume role for {ROLE}.")
    );
}

fn assert_mentions(text: &str, needles: &[&str]) {
    for n in needles {
        assert!(text.contains(n), "{text:?} lacks {n:?}");
    }
}

#[test]
fn the_seed_policy_admits_its_cn_and_refuses_another_naming_the_condition() {
    let env = start(Some(seed_policy(ANCHOR)), true);
    let allowed = env.leaf("CN=allowed-host,OU=web", &["dns:allowed-host.example.com"]);
    let r = env.create_session(&allowed);
    let key = access_key_id(&r);
    assert_eq!(
        r.json()["credentialSet"][0]["sourceIdentity"],
        "CN=allowed-host"
    );
    assert_eq!(env.last_decision(), "session issued");

    // The debug view shows the tags the trust policy saw.
    let view = env.session_view(&key);
    assert_eq!(
        view["principalTags"],
        serde_json::json!({
            "x509Subject/CN": "allowed-host",
            "x509Subject/OU": "web",
            "x509Issuer/CN": "Trust Root",
            "x509SAN/DNS": "allowed-host.example.com",
        })
    );
    assert_eq!(view["sourceIdentity"], "CN=allowed-host");
    let session = env.server.session(&key).expect("session kept");
    let keys: Vec<&str> = session
        .principal_tags
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "x509Subject/CN",
            "x509Subject/OU",
            "x509Issuer/CN",
            "x509SAN/DNS"
        ]
    );

    let other = env.leaf("CN=other-host,OU=web", &[]);
    let r = env.create_session(&other);
    assert_trust_denied(&r);
    assert!(!r.body.contains("allowed-host"), "{}", r.body);
    let d = env.server.decisions();
    let last = d.last().expect("decision");
    assert_eq!(last.status, 403);
    assert_eq!(
        last.serial_decimal.as_deref(),
        Some(other.serial_decimal.as_str())
    );
    assert_mentions(
        &last.message,
        &[
            "sts:AssumeRole implicitly denied",
            "Statement[0] (Sid \"SeedCondition\")",
            "StringEquals \"aws:PrincipalTag/x509Subject/CN\" [\"allowed-host\"] is false for request value [\"other-host\"]",
        ],
    );
    assert_eq!(env.server.sessions_issued(), 1);
}

#[test]
fn the_source_arn_condition_refuses_another_anchor() {
    let elsewhere = ANCHOR.replace("11111111-", "99999999-");
    let env = start(Some(seed_policy(&elsewhere)), true);
    let r = env.create_session(&env.leaf("CN=allowed-host", &[]));
    assert_trust_denied(&r);
    assert_mentions(
        &env.last_decision(),
        &["ArnEquals \"aws:SourceArn\"", &elsewhere, ANCHOR],
    );
}

#[test]
fn an_explicit_deny_wins_over_an_allow() {
    let doc = policy(&[
        allow("Everyone", "{}"),
        r#"{"Sid":"NoQuarantine","Effect":"Deny","Principal":{"Service":"rolesanywhere.amazonaws.com"},
            "Action":"sts:*","Condition":{"StringEquals":{"aws:PrincipalTag/x509Subject/OU":"quarantine"}}}"#
            .to_string(),
    ]);
    let env = start(Some(doc), true);
    access_key_id(&env.create_session(&env.leaf("CN=web-1,OU=web", &[])));
    let r = env.create_session(&env.leaf("CN=web-2,OU=quarantine", &[]));
    assert_trust_denied(&r);
    assert_mentions(
        &env.last_decision(),
        &[
            "sts:AssumeRole explicitly denied by Statement[1] (Sid \"NoQuarantine\")",
            "StringEquals \"aws:PrincipalTag/x509Subject/OU\" [\"quarantine\"] is true",
        ],
    );
}

#[test]
fn string_not_equals_holds_on_a_tag_the_mapping_drops() {
    let doc = policy(&[allow(
        "NotQuarantined",
        r#"{"StringNotEquals":{"aws:PrincipalTag/x509Subject/OU":"quarantine"}}"#,
    )]);
    let env = start(Some(doc), true);

    // The OU is a tag, and it is the refused value.
    assert_trust_denied(&env.create_session(&env.leaf("CN=web-3,OU=quarantine", &[])));
    assert_mentions(
        &env.last_decision(),
        &[
            "StringNotEquals \"aws:PrincipalTag/x509Subject/OU\" [\"quarantine\"] is false for request value [\"quarantine\"]",
        ],
    );

    // `(` is outside STS's tag pattern: the mapping drops the OU, the key is absent from the
    // request and StringNotEquals holds ("disregarded when the principal tag is dropped").
    let key = access_key_id(&env.create_session(&env.leaf("CN=web-4,OU=quarantine (old)", &[])));
    assert_eq!(
        env.session_view(&key)["principalTags"],
        serde_json::json!({"x509Subject/CN": "web-4", "x509Issuer/CN": "Trust Root"})
    );
}

#[test]
fn for_any_value_and_if_exists_end_to_end() {
    let doc = policy(&[allow(
        "ProdHosts",
        r#"{"ForAnyValue:StringLike":{"aws:PrincipalTag/x509SAN/DNS":["*.prod.example.com"]},
            "StringEqualsIfExists":{"aws:PrincipalTag/x509Subject/OU":"web"}}"#,
    )]);
    let env = start(Some(doc), true);

    // No OU: IfExists holds on the absent key.
    access_key_id(&env.create_session(&env.leaf("CN=api-1", &["dns:api-1.prod.example.com"])));
    access_key_id(
        &env.create_session(&env.leaf("CN=api-2,OU=web", &["dns:api-2.prod.example.com"])),
    );

    assert_trust_denied(
        &env.create_session(&env.leaf("CN=api-3,OU=db", &["dns:api-3.prod.example.com"])),
    );
    assert_mentions(
        &env.last_decision(),
        &[
            "StringEqualsIfExists \"aws:PrincipalTag/x509Subject/OU\" [\"web\"] is false for request value [\"db\"]",
        ],
    );

    assert_trust_denied(
        &env.create_session(&env.leaf("CN=api-4", &["dns:api-4.test.example.com"])),
    );
    assert_mentions(
        &env.last_decision(),
        &[
            "ForAnyValue:StringLike \"aws:PrincipalTag/x509SAN/DNS\" [\"*.prod.example.com\"] is false for request value [\"api-4.test.example.com\"]",
        ],
    );

    // No DNS name at all: ForAnyValue on an absent key is false.
    assert_trust_denied(&env.create_session(&env.leaf("CN=api-5", &[])));
    assert_mentions(&env.last_decision(), &["(key absent from the request)"]);
    assert_eq!(env.server.sessions_issued(), 2);
}

#[test]
fn a_policy_without_tag_session_is_refused_as_the_user_guide_requires() {
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Principal":{"Service":"rolesanywhere.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let env = start(Some(doc.into()), true);
    assert_trust_denied(&env.create_session(&env.leaf("CN=plain", &[])));
    assert_mentions(
        &env.last_decision(),
        &["sts:TagSession implicitly denied: Statement[0]: action does not match"],
    );
}

#[test]
fn without_a_trust_policy_the_role_is_assumed_as_before() {
    for listed in [true, false] {
        let env = start(None, listed);
        let key = access_key_id(&env.create_session(&env.leaf("CN=anyone", &[])));
        assert_eq!(
            env.session_view(&key)["principalTags"]["x509Subject/CN"],
            "anyone"
        );
    }
}

#[test]
fn a_stored_policy_that_does_not_parse_refuses_with_its_cause() {
    let env = start(
        Some(r#"{"Statement":{"Effect":"Allow","Action":"sts:AssumeRole"}}"#.into()),
        true,
    );
    let r = env.create_session(&env.leaf("CN=anyone", &[]));
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.header("x-amzn-errortype"), Some("AccessDeniedException"));
    let msg = r.json()["message"].as_str().expect("message").to_string();
    assert_mentions(
        &msg,
        &[ROLE, "trust policy", "does not parse", "has no Principal"],
    );
}

/// The profile's session policy, set through the control plane by boto3's `rolesanywhere` client,
/// is carried by the session and shown by the debug view; the trust policy is still evaluated.
#[test]
fn the_session_carries_the_session_policy_of_a_profile_created_with_boto3() {
    let env = start(Some(seed_policy(ANCHOR)), true);
    let script = r#"import boto3, botocore, json, sys
c = boto3.client('rolesanywhere', endpoint_url=sys.argv[1], region_name='us-east-1',
    aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3],
    config=botocore.config.Config(retries={'max_attempts': 1}))
p = c.create_profile(name='scoped', roleArns=[sys.argv[4]], sessionPolicy=sys.argv[5],
    durationSeconds=3600, enabled=True)['profile']
print(json.dumps({'arn': p['profileArn']}))
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args([
            env.server.url().as_str(),
            ADMIN_KEY_ID,
            ADMIN_SECRET,
            ROLE,
            SESSION_POLICY,
        ])
        .output()
        .expect("python3 with boto3 is required (scripts/install-deps)");
    assert!(
        out.status.success(),
        "boto3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let profile = created["arn"].as_str().expect("profile ARN").to_string();

    let session_via = |id: &Identity| {
        let host = env.server.url().trim_start_matches("http://").to_string();
        let mut call = Call::new(&host, "{\"durationSeconds\":900}");
        call.query = vec![
            ("profileArn".into(), profile.clone()),
            ("roleArn".into(), ROLE.into()),
            ("trustAnchorArn".into(), ANCHOR.into()),
        ];
        send(
            &env.server.url(),
            None,
            &sign(id, &call),
            Duration::from_secs(10),
        )
        .expect("request")
    };
    let key = access_key_id(&session_via(&env.leaf("CN=allowed-host", &[])));
    let view = env.session_view(&key);
    assert_eq!(view["sessionPolicy"], SESSION_POLICY);
    assert_eq!(view["profileArn"], profile.as_str());
    assert_eq!(view["principalTags"]["x509Subject/CN"], "allowed-host");
    assert_trust_denied(&session_via(&env.leaf("CN=other-host", &[])));
}

/// `aws rolesanywhere put-attribute-mapping` (the AWS CLI against the control plane) replacing the
/// profile's subject rules with `specifiers`.
fn put_subject_mapping(env: &Env, specifiers: &[&str]) {
    let rules: Vec<String> = specifiers
        .iter()
        .map(|s| format!("specifier={s}"))
        .collect();
    let profile_id = PROFILE.rsplit('/').next().expect("profile id");
    let out = std::process::Command::new("aws")
        .args(["rolesanywhere", "put-attribute-mapping", "--profile-id"])
        .arg(profile_id)
        .args(["--certificate-field", "x509Subject", "--mapping-rules"])
        .args(&rules)
        .args(["--endpoint-url", &env.server.url()])
        .env("AWS_ACCESS_KEY_ID", ADMIN_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", ADMIN_SECRET)
        .env("AWS_DEFAULT_REGION", REGION)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("the AWS CLI is required (scripts/install-deps installs awscli)");
    assert!(
        out.status.success(),
        "put-attribute-mapping failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let put: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let subject = put["profile"]["attributeMappings"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["certificateField"] == "x509Subject"))
        .expect("the subject's mapping");
    let expected: Vec<serde_json::Value> = specifiers
        .iter()
        .map(|s| serde_json::json!({ "specifier": s }))
        .collect();
    assert_eq!(subject["mappingRules"], serde_json::Value::from(expected));
}

/// A subject attribute that PutAttributeMapping no longer maps is absent from the request, as a
/// dropped tag is: a `StringNotEquals` condition on it is disregarded (holds) and admits the
/// certificate it refused before, while a `StringEquals` condition on it refuses the certificate it
/// admitted before.
#[test]
fn a_subject_field_left_out_by_put_attribute_mapping_satisfies_not_equals_and_fails_equals() {
    let not_equals = policy(&[allow(
        "NotQuarantined",
        r#"{"StringNotEquals":{"aws:PrincipalTag/x509Subject/OU":"quarantine"}}"#,
    )]);
    let env = start(Some(not_equals), true);
    let quarantined = env.leaf("CN=web-6,OU=quarantine", &[]);
    assert_trust_denied(&env.create_session(&quarantined));
    assert_mentions(
        &env.last_decision(),
        &[
            "StringNotEquals \"aws:PrincipalTag/x509Subject/OU\" [\"quarantine\"] is false for request value [\"quarantine\"]",
        ],
    );
    put_subject_mapping(&env, &["CN"]);
    let key = access_key_id(&env.create_session(&quarantined));
    assert_eq!(
        env.session_view(&key)["principalTags"],
        serde_json::json!({"x509Subject/CN": "web-6", "x509Issuer/CN": "Trust Root"})
    );

    let equals = policy(&[allow(
        "WebOnly",
        r#"{"StringEquals":{"aws:PrincipalTag/x509Subject/OU":"web"}}"#,
    )]);
    let env = start(Some(equals), true);
    let web = env.leaf("CN=web-7,OU=web", &[]);
    let key = access_key_id(&env.create_session(&web));
    assert_eq!(
        env.session_view(&key)["principalTags"]["x509Subject/OU"],
        "web"
    );
    put_subject_mapping(&env, &["CN"]);
    assert_trust_denied(&env.create_session(&web));
    assert_mentions(
        &env.last_decision(),
        &[
            "Statement[0] (Sid \"WebOnly\")",
            "StringEquals \"aws:PrincipalTag/x509Subject/OU\" [\"web\"]",
            "(key absent from the request)",
        ],
    );
    assert_eq!(env.server.sessions_issued(), 1);
}
