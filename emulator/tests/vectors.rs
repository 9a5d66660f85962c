//! The verifier against the shared golden vectors: each accepted as recorded, and refused after a
//! one-byte change to the body, a signed header, the serial or the date.

use std::path::PathBuf;

use rolesanywhere_emulator::config::{Config, Profile, Role, TrustAnchor};
use rolesanywhere_emulator::verifier::{self, ErrorKind, HttpRequest};

const CASES: [&str; 3] = [
    "create-session-p256",
    "create-session-p384-chain",
    "create-session-rsa",
];

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/vectors")
}

fn read(case: &str, file: &str) -> String {
    let p = vectors_dir().join(case).join(file);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

struct Vector {
    context: serde_json::Value,
    headers: Vec<(String, String)>,
    query: String,
    body: Vec<u8>,
}

fn load(case: &str) -> Vector {
    let context: serde_json::Value =
        serde_json::from_str(&read(case, "context.json")).expect("context.json");
    let canonical = read(case, "canonical-request.txt");
    let lines: Vec<&str> = canonical.split('\n').collect();
    // Header lines sit between the query line and the blank line before SignedHeaders.
    let mut headers: Vec<(String, String)> = lines[3..]
        .iter()
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').expect("name:value");
            (n.to_string(), v.to_string())
        })
        .collect();
    headers.push(("authorization".into(), read(case, "authorization.txt")));
    Vector {
        body: context["body"].as_str().expect("body").as_bytes().to_vec(),
        query: read(case, "canonical-query.txt"),
        context,
        headers,
    }
}

fn config_for(v: &Vector) -> Config {
    let root = std::fs::read_to_string(vectors_dir().join("root-ca.pem")).expect("root-ca.pem");
    let b64: String = root.lines().filter(|l| !l.starts_with("-----")).collect();
    use base64::Engine as _;
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("root base64");
    let q = &v.context["query"];
    let s = |k: &str| q[k].as_str().expect("arn").to_string();
    Config {
        region: v.context["region"].as_str().expect("region").to_string(),
        trust_anchors: vec![TrustAnchor {
            arn: s("trustAnchorArn"),
            certificates: vec![der],
            enabled: true,
            crls: vec![],
        }],
        profiles: vec![Profile {
            arn: s("profileArn"),
            role_arns: vec![s("roleArn")],
            duration_seconds: 43200,
            accept_role_session_name: true,
            enabled: true,
            session_policy: None,
            managed_policy_arns: vec![],
            attribute_mappings: Default::default(),
        }],
        roles: vec![Role {
            arn: s("roleArn"),
            max_session_duration: 43200,
            trust_policy: None,
        }],
        faults: vec![],
        admin: None,
        account_id: "123456789012".into(),
        state_file: None,
    }
}

fn now(v: &Vector) -> time::OffsetDateTime {
    verifier::parse_amz_date(v.context["time"].as_str().expect("time")).expect("vector time")
}

fn request<'a>(headers: &'a [(String, String)], body: &'a [u8], query: &'a str) -> HttpRequest<'a> {
    HttpRequest {
        method: "POST",
        path: "/sessions",
        query,
        headers,
        body,
    }
}

#[test]
fn canonical_request_and_string_to_sign_match_vectors_byte_for_byte() {
    for case in CASES {
        let v = load(case);
        let signed: Vec<String> = read(case, "signed-headers.txt")
            .split(';')
            .map(str::to_string)
            .collect();
        let req = request(&v.headers, &v.body, &v.query);
        let canonical = verifier::canonical_request(&req, &signed).expect("canonical request");
        assert_eq!(canonical, read(case, "canonical-request.txt"), "{case}");
        let date = v.context["time"].as_str().expect("time");
        let scope = format!(
            "{}/{}/rolesanywhere/aws4_request",
            &date[..8],
            v.context["region"].as_str().expect("region")
        );
        let sts = verifier::string_to_sign(
            v.context["algorithm"].as_str().expect("alg"),
            date,
            &scope,
            &canonical,
        );
        assert_eq!(sts, read(case, "string-to-sign.txt"), "{case}");
    }
}

#[test]
fn canonical_query_reencodes_and_sorts_parameters() {
    assert_eq!(
        verifier::canonical_query("b=2&a=x%2fy&a=%41+b").expect("query"),
        "a=%41%2Bb&a=x%2Fy&b=2".replace("%41", "A")
    );
    assert_eq!(
        verifier::canonical_query("k=a%20b~").expect("query"),
        "k=a%20b~"
    );
}

#[test]
fn every_vector_is_accepted_at_its_time() {
    for case in CASES {
        let v = load(case);
        let req = request(&v.headers, &v.body, &v.query);
        let acc = verifier::verify(&req, &config_for(&v), now(&v))
            .unwrap_or_else(|r| panic!("{case} refused: {r:?}"));
        let body: serde_json::Value = serde_json::from_slice(&v.body).expect("body json");
        assert_eq!(
            u64::from(acc.duration_seconds),
            body["durationSeconds"].as_u64().expect("duration")
        );
        let auth = read(case, "authorization.txt");
        assert!(
            auth.contains(&format!("Credential={}/", acc.serial_decimal)),
            "{case}"
        );
    }
}

fn refused_with(
    case: &str,
    headers: &[(String, String)],
    body: &[u8],
    query: &str,
) -> verifier::Refusal {
    let v = load(case);
    let req = request(headers, body, query);
    match verifier::verify(&req, &config_for(&v), now(&v)) {
        Ok(_) => panic!("{case}: altered request was accepted"),
        Err(r) => r,
    }
}

fn with_header(v: &Vector, name: &str, f: impl Fn(&str) -> String) -> Vec<(String, String)> {
    v.headers
        .iter()
        .map(|(n, val)| {
            if n == name {
                (n.clone(), f(val))
            } else {
                (n.clone(), val.clone())
            }
        })
        .collect()
}

#[test]
fn one_byte_change_to_body_is_refused_as_invalid_signature() {
    for case in CASES {
        let v = load(case);
        let mut body = v.body.clone();
        let last = body.len() - 2;
        body[last] = if body[last] == b'0' { b'1' } else { b'0' };
        let r = refused_with(case, &v.headers, &body, &v.query);
        assert_eq!(
            (r.kind, r.message.as_str()),
            (ErrorKind::AccessDenied, "Invalid signature"),
            "{case}"
        );
    }
}

#[test]
fn one_byte_change_to_a_signed_header_is_refused() {
    for case in CASES {
        let v = load(case);
        let headers = with_header(&v, "content-type", |val| val.replace("json", "jsoN"));
        let r = refused_with(case, &headers, &v.body, &v.query);
        assert_eq!(
            (r.kind, r.message.as_str()),
            (ErrorKind::AccessDenied, "Invalid signature"),
            "{case}"
        );
        let headers = with_header(&v, "host", |val| format!("{val}x"));
        let r = refused_with(case, &headers, &v.body, &v.query);
        assert_eq!(r.kind, ErrorKind::AccessDenied, "{case}");
    }
}

#[test]
fn one_byte_change_to_the_query_is_refused() {
    for case in CASES {
        let v = load(case);
        let query = v.query.replace("ExampleRole", "ExampleRolf");
        let r = refused_with(case, &v.headers, &v.body, &query);
        assert_eq!(r.message, "Invalid signature", "{case}");
    }
}

#[test]
fn changed_serial_in_credential_is_refused() {
    for case in CASES {
        let v = load(case);
        let headers = with_header(&v, "authorization", |val| {
            val.replacen("Credential=", "Credential=1", 1)
        });
        let r = refused_with(case, &headers, &v.body, &v.query);
        assert_eq!(r.kind, ErrorKind::AccessDenied, "{case}");
        assert!(r.message.contains("serial"), "{case}: {}", r.message);
    }
}

#[test]
fn changed_date_is_refused() {
    for case in CASES {
        let v = load(case);
        let headers = with_header(&v, "x-amz-date", |val| val.replace("T120000Z", "T120001Z"));
        let r = refused_with(case, &headers, &v.body, &v.query);
        assert_eq!(
            (r.kind, r.message.as_str()),
            (ErrorKind::AccessDenied, "Invalid signature"),
            "{case}"
        );
        let headers = with_header(&v, "authorization", |val| {
            val.replace("/20260301/", "/20260302/")
        });
        let r = refused_with(case, &headers, &v.body, &v.query);
        assert!(
            r.message.contains("credential scope date"),
            "{case}: {}",
            r.message
        );
    }
}

#[test]
fn vector_outside_five_minutes_of_now_is_refused() {
    let v = load("create-session-rsa");
    let req = request(&v.headers, &v.body, &v.query);
    let config = config_for(&v);
    assert!(verifier::verify(&req, &config, now(&v) + time::Duration::seconds(300)).is_ok());
    let r = verifier::verify(&req, &config, now(&v) + time::Duration::seconds(301))
        .expect_err("skewed");
    assert!(r.message.contains("x-amz-date"), "{}", r.message);
    let r = verifier::verify(&req, &config, now(&v) - time::Duration::seconds(301))
        .expect_err("skewed");
    assert_eq!(r.kind, ErrorKind::AccessDenied);
}

#[test]
fn region_other_than_the_endpoints_is_refused() {
    let v = load("create-session-p256");
    let mut config = config_for(&v);
    config.region = "eu-west-1".into();
    let req = request(&v.headers, &v.body, &v.query);
    let r = verifier::verify(&req, &config, now(&v)).expect_err("wrong region");
    assert!(r.message.contains("region"), "{}", r.message);
}
