//! The control plane driven by real clients: boto3's `rolesanywhere` client and the AWS CLI with
//! `--endpoint-url`, then CreateSession (signed by the independent signer in `support`) against
//! what they created; attribute mappings, tags, notification settings and the subjects
//! CreateSession saw; SigV4 refusals as botocore's exception classes; state kept across restarts.

mod support;

use std::path::Path;
use std::process::Command;

use rolesanywhere_emulator::ca::{Ca, KeyType};
use rolesanywhere_emulator::config::Settings;
use rolesanywhere_emulator::server::{self, Running, ServeOptions, Tls};
use support::*;

const KEY_ID: &str = "AKIAEMULATORADMIN001";
const SECRET: &str = "emulator/admin+secret/0123456789abcdefghij";

fn start(config: &Path) -> Running {
    let settings = Settings::from_file(config).expect("config");
    server::spawn_with(
        settings.config,
        settings.limits,
        ServeOptions {
            listen: "127.0.0.1:0".parse().expect("addr"),
            tls: Tls::None,
        },
    )
    .expect("spawn")
}

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    Ca::init(&tmp.path().join("root"), KeyType::EcP256, "Test Root").expect("root CA");
    let toml = format!(
        "{}\n[admin]\naccess_key_id = \"{KEY_ID}\"\nsecret_access_key = \"{SECRET}\"\n",
        config_toml(tmp.path(), "", "")
    );
    let path = tmp.path().join("config.toml");
    std::fs::write(&path, toml).expect("config");
    (tmp, path)
}

/// Runs a python3 script with boto3 against `url`; returns its stdout as JSON.
fn boto3(url: &str, secret: &str, script: &str, args: &[&str]) -> serde_json::Value {
    let prelude = r#"import boto3, botocore, json, sys
c = boto3.client('rolesanywhere', endpoint_url=sys.argv[1], region_name='us-east-1',
    aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3],
    config=botocore.config.Config(retries={'max_attempts': 1}, parameter_validation=False))
"#;
    let mut argv = vec![url, KEY_ID, secret];
    argv.extend_from_slice(args);
    python_json(prelude, script, &argv)
}

/// CreateSession for `id` naming these ARNs.
fn create_session(server: &Running, id: &Identity, anchor: &str, profile: &str) -> Response {
    create_session_at(&server.url(), id, anchor, profile, ROLE, 3600)
}

/// Runs the AWS CLI against `url` with the admin credentials and nothing from the environment's
/// AWS configuration: (exit code, stdout, stderr).
fn aws_cli(url: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new("aws")
        .args(args)
        .args(["--endpoint-url", url])
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("the AWS CLI is required (scripts/install-deps installs awscli)");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// The UUID at the end of an ARN.
fn id_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

const SEEDS_SESSION_POLICY: &str = include_str!("../testdata/seeds-session-policy.json");

#[test]
fn boto3_creates_anchor_profile_and_crl_that_create_session_uses_and_state_survives_restart() {
    let (tmp, config) = setup();
    let other = Ca::init(&tmp.path().join("other"), KeyType::EcP256, "Other CA").expect("CA");
    let good = leaf(&other, KeyType::EcP256, "good-host");
    let revoked = leaf(&other, KeyType::EcP256, "revoked-host");
    let crl = other.revoke(&revoked.cert_pem).expect("revoke");
    let ca_pem = tmp.path().join("other/ca.pem");
    let server = start(&config);
    let url = server.url();

    // Before: a certificate of the other CA is not trusted by the seeded anchor.
    assert_eq!(create_session(&server, &good, ANCHOR, PROFILE).status, 403);

    let created = boto3(
        &url,
        SECRET,
        "pem = open(sys.argv[4]).read()\n\
         ta = c.create_trust_anchor(name='external-ca-trust', enabled=True,\n\
             source={'sourceType': 'CERTIFICATE_BUNDLE', 'sourceData': {'x509CertificateData': pem}})['trustAnchor']\n\
         pca = err(lambda: c.create_trust_anchor(name='pca', source={'sourceType': 'AWS_ACM_PCA',\n\
             'sourceData': {'acmPcaArn': 'arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/x'}}))\n\
         notca = err(lambda: c.create_trust_anchor(name='leaf', source={'sourceType': 'CERTIFICATE_BUNDLE',\n\
             'sourceData': {'x509CertificateData': open(sys.argv[7]).read()}}))\n\
         pr = c.create_profile(name='backup-server-profile', roleArns=[sys.argv[5]],\n\
             sessionPolicy=sys.argv[8], durationSeconds=3600, enabled=True)['profile']\n\
         baddur = err(lambda: c.create_profile(name='p', roleArns=[sys.argv[5]], durationSeconds=60))\n\
         crl = c.import_crl(name='other-crl', crlData=open(sys.argv[6], 'rb').read(),\n\
             trustAnchorArn=ta['trustAnchorArn'], enabled=True)['crl']\n\
         pages, kw = [], {'pageSize': 1}\n\
         while True:\n\
         \x20   r = c.list_trust_anchors(**kw); pages.append(r['trustAnchors'])\n\
         \x20   if 'nextToken' not in r: break\n\
         \x20   kw['nextToken'] = r['nextToken']\n\
         all_ = [a['name'] for p in c.get_paginator('list_trust_anchors').paginate() for a in p['trustAnchors']]\n\
         missing = err(lambda: c.get_profile(profileId='00000000-0000-4000-8000-000000000000'))\n\
         print(json.dumps({'ta': ta, 'pr': pr, 'crl': crl, 'pca': pca, 'notca': notca, 'baddur': baddur,\n\
             'pages': [[a['name'] for a in p] for p in pages], 'missing': missing, 'all': all_,\n\
             'got': c.get_trust_anchor(trustAnchorId=ta['trustAnchorId'])['trustAnchor']['name']}, default=str))\n",
        &[
            ca_pem.to_str().expect("utf-8"),
            ROLE,
            crl.to_str().expect("utf-8"),
            tmp.path().join("root/ca.key").to_str().expect("utf-8"),
            SEEDS_SESSION_POLICY,
        ],
    );
    let ta = &created["ta"];
    let anchor_arn = ta["trustAnchorArn"].as_str().expect("arn");
    assert!(
        anchor_arn.starts_with("arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/"),
        "{anchor_arn}"
    );
    assert_eq!(ta["source"]["sourceType"], "CERTIFICATE_BUNDLE");
    assert_eq!(ta["enabled"], true);
    assert_eq!(created["got"], "external-ca-trust");
    assert_eq!(
        created["pca"],
        serde_json::json!(["ValidationException", "ValidationException", 400])
    );
    assert_eq!(created["notca"][1], "ValidationException");
    assert_eq!(created["baddur"][1], "ValidationException");
    // Modeled errors raise the model's exception classes, as against AWS.
    assert_eq!(created["missing"][0], "ResourceNotFoundException");
    assert_eq!(created["missing"][1], "ResourceNotFoundException");
    assert_eq!(created["missing"][2], 404);
    // The seeded anchor and the new one, one per page.
    assert_eq!(
        created["pages"],
        serde_json::json!([[ANCHOR.rsplit('/').next()], ["external-ca-trust"]])
    );
    assert_eq!(
        created["all"],
        serde_json::json!([ANCHOR.rsplit('/').next(), "external-ca-trust"])
    );
    let pr = &created["pr"];
    let profile_arn = pr["profileArn"].as_str().expect("arn");
    assert_eq!(pr["durationSeconds"], 3600);
    assert_eq!(pr["sessionPolicy"], SEEDS_SESSION_POLICY);
    assert_eq!(created["crl"]["trustAnchorArn"], anchor_arn);

    // CreateSession sees the new anchor and profile; the imported CRL revokes.
    let r = create_session(&server, &good, anchor_arn, profile_arn);
    assert_eq!(r.status, 201, "{}", r.body);
    let r = create_session(&server, &revoked, anchor_arn, profile_arn);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("revoked"), "{}", r.body);

    // A disabled profile refuses; the CRL disabled, the revoked certificate passes again.
    let ids = boto3(
        &url,
        SECRET,
        "c.disable_profile(profileId=sys.argv[4])\n\
         c.disable_crl(crlId=sys.argv[5])\n\
         print(json.dumps(c.get_profile(profileId=sys.argv[4])['profile']['enabled']))\n",
        &[
            pr["profileId"].as_str().expect("id"),
            created["crl"]["crlId"].as_str().expect("id"),
        ],
    );
    assert_eq!(ids, serde_json::json!(false));
    let r = create_session(&server, &good, anchor_arn, profile_arn);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("disabled"), "{}", r.body);
    let r = create_session(&server, &revoked, anchor_arn, PROFILE);
    assert_eq!(r.status, 201, "{}", r.body);

    // Restart: everything created is still there, from a private state file.
    drop(server);
    let state = tmp.path().join("config.toml.state.json");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&state)
            .expect("state file")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    let server = start(&config);
    let after = boto3(
        &server.url(),
        SECRET,
        "print(json.dumps([len(c.list_trust_anchors()['trustAnchors']), c.list_profiles()['profiles'][1]['enabled'],\n\
             c.list_crls()['crls'][0]['enabled']]))\n",
        &[],
    );
    assert_eq!(after, serde_json::json!([2, false, false]));
    let r = create_session(&server, &revoked, anchor_arn, PROFILE);
    assert_eq!(r.status, 201, "{}", r.body);
}

#[test]
fn bad_signatures_raise_botocore_exception_classes() {
    let (_tmp, config) = setup();
    let server = start(&config);
    let out = boto3(
        &server.url(),
        "not-the-secret",
        "wrong = err(lambda: c.list_trust_anchors())\n\
         c2 = boto3.client('rolesanywhere', endpoint_url=sys.argv[1], region_name='us-east-1',\n\
             aws_access_key_id='AKIAUNKNOWN000000000', aws_secret_access_key=sys.argv[3])\n\
         unknown = err(lambda: c2.list_profiles())\n\
         c3 = boto3.client('rolesanywhere', endpoint_url=sys.argv[1], region_name='us-east-1',\n\
             config=botocore.config.Config(signature_version=botocore.UNSIGNED))\n\
         unsigned = err(lambda: c3.list_crls())\n\
         print(json.dumps([wrong, unknown, unsigned]))\n",
        &[],
    );
    assert_eq!(
        out,
        serde_json::json!([
            ["ClientError", "InvalidSignatureException", 403],
            ["ClientError", "UnrecognizedClientException", 403],
            ["ClientError", "MissingAuthenticationTokenException", 403]
        ])
    );
    // The right secret works on the same server.
    let ok = boto3(
        &server.url(),
        SECRET,
        "print(json.dumps(len(c.list_profiles()['profiles'])))\n",
        &[],
    );
    assert_eq!(ok, serde_json::json!(1));
}

#[test]
fn aws_cli_runs_the_seeds_commands_unchanged_but_for_endpoint_url() {
    if Command::new("aws").arg("--version").output().is_err() {
        panic!("the AWS CLI is required (scripts/install-deps installs awscli)");
    }
    let (tmp, config) = setup();
    let other = Ca::init(&tmp.path().join("other"), KeyType::EcP256, "Other CA").expect("CA");
    drop(other);
    let server = start(&config);
    let aws = |args: &[&str]| aws_cli(&server.url(), args);
    let pem = std::fs::read_to_string(tmp.path().join("other/ca.pem")).expect("pem");
    let source = format!("sourceType=CERTIFICATE_BUNDLE,sourceData={{x509CertificateData={pem}}}");
    let (code, out, err) = aws(&[
        "rolesanywhere",
        "create-trust-anchor",
        "--name",
        "external-ca-trust",
        "--source",
        &source,
        "--enabled",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let created: serde_json::Value = serde_json::from_str(&out).expect("json");
    let id = created["trustAnchor"]["trustAnchorId"]
        .as_str()
        .expect("id");
    let (code, _, err) = aws(&[
        "rolesanywhere",
        "create-trust-anchor",
        "--name",
        "on-prem-workloads-ca",
        "--source",
        "sourceType=AWS_ACM_PCA,sourceData={acmPcaArn=arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/abcd1234-ef56-gh78-ij90-klmnopqrstuv}",
        "--enabled",
    ]);
    assert!(matches!(code, Some(254 | 255)), "{code:?} {err}");
    assert!(
        err.contains("ValidationException") && err.contains("AWS_ACM_PCA"),
        "{err}"
    );
    let (code, out, err) = aws(&[
        "rolesanywhere",
        "list-trust-anchors",
        "--query",
        "trustAnchors[].{Name:name,Id:trustAnchorId,Enabled:enabled}",
        "--output",
        "text",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.lines()
            .any(|l| l.split('\t').collect::<Vec<_>>() == ["True", id, "external-ca-trust"]),
        "{out}"
    );
    let (code, out, err) = aws(&[
        "rolesanywhere",
        "create-profile",
        "--name",
        "backup-server-profile",
        "--role-arns",
        "arn:aws:iam::123456789012:role/OnPremBackupRole",
        "--session-policy",
        SEEDS_SESSION_POLICY,
        "--duration-seconds",
        "3600",
        "--enabled",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let profile: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(profile["profile"]["durationSeconds"], 3600);
    assert_eq!(profile["profile"]["enabled"], true);
}

#[test]
fn boto3_manages_mappings_tags_notifications_and_lists_the_subjects_create_session_saw() {
    let (tmp, config) = setup();
    let root = Ca::load(&tmp.path().join("root")).expect("root CA");
    let a = leaf(&root, KeyType::EcP256, "host-a");
    let b = leaf(&root, KeyType::EcP256, "host-b");
    let server = start(&config);
    let url = server.url();

    // Sessions for a, b, then a again: two subjects, a the most recently seen.
    let first = create_session(&server, &a, ANCHOR, PROFILE);
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(create_session(&server, &b, ANCHOR, PROFILE).status, 201);
    assert_eq!(create_session(&server, &a, ANCHOR, PROFILE).status, 201);
    let subject_arn =
        serde_json::from_str::<serde_json::Value>(&first.body).expect("json")["subjectArn"]
            .as_str()
            .expect("subjectArn")
            .to_string();

    let out = boto3(
        &url,
        SECRET,
        "pid, tid, anchor, profile = sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7]\n\
         put = c.put_attribute_mapping(profileId=pid, certificateField='x509Subject',\n\
             mappingRules=[{'specifier': 'CN'}, {'specifier': 'OU'}])['profile']['attributeMappings']\n\
         deleted = c.delete_attribute_mapping(profileId=pid, certificateField='x509SAN',\n\
             specifiers=['DNS', 'Name/*'])['profile']['attributeMappings']\n\
         got = c.get_profile(profileId=pid)['profile']['attributeMappings']\n\
         badfield = err(lambda: c.put_attribute_mapping(profileId=pid, certificateField='x509Foo',\n\
             mappingRules=[]))\n\
         longspec = err(lambda: c.put_attribute_mapping(profileId=pid, certificateField='x509Issuer',\n\
             mappingRules=[{'specifier': 'A' * 61}]))\n\
         c.tag_resource(resourceArn=anchor, tags=[{'key': 'team', 'value': 'infra'}, {'key': 'env', 'value': 'dev'}])\n\
         c.untag_resource(resourceArn=anchor, tagKeys=['env'])\n\
         tags = c.list_tags_for_resource(resourceArn=anchor)['tags']\n\
         many = err(lambda: c.tag_resource(resourceArn=profile,\n\
             tags=[{'key': 'k%d' % i, 'value': 'v'} for i in range(201)]))\n\
         badtag = err(lambda: c.tag_resource(resourceArn=profile, tags=[{'key': 'a*b', 'value': 'v'}]))\n\
         notag = err(lambda: c.list_tags_for_resource(resourceArn=anchor + 'x'))\n\
         put_n = c.put_notification_settings(trustAnchorId=tid, notificationSettings=[\n\
             {'enabled': False, 'event': 'END_ENTITY_CERTIFICATE_EXPIRY', 'threshold': 10}])['trustAnchor']\n\
         got_n = c.get_trust_anchor(trustAnchorId=tid)['trustAnchor']['notificationSettings']\n\
         badn = err(lambda: c.put_notification_settings(trustAnchorId=tid, notificationSettings=[\n\
             {'enabled': True, 'event': 'CA_CERTIFICATE_EXPIRY', 'threshold': 400}]))\n\
         reset = c.reset_notification_settings(trustAnchorId=tid,\n\
             notificationSettingKeys=[{'event': 'END_ENTITY_CERTIFICATE_EXPIRY', 'channel': 'ALL'}])\n\
         subjects = c.list_subjects()['subjects']\n\
         paged = [[x['subjectId'] for x in p['subjects']] for p in\n\
             c.get_paginator('list_subjects').paginate(pageSize=1)]\n\
         detail = c.get_subject(subjectId=subjects[-1]['subjectId'])['subject']\n\
         nosubject = err(lambda: c.get_subject(subjectId='00000000-0000-4000-8000-000000000000'))\n\
         print(json.dumps({'put': put, 'deleted': deleted, 'got': got, 'badfield': badfield,\n\
             'longspec': longspec, 'tags': tags, 'many': many, 'badtag': badtag, 'notag': notag,\n\
             'put_n': put_n['notificationSettings'], 'got_n': got_n, 'badn': badn,\n\
             'reset': reset['trustAnchor']['notificationSettings'], 'subjects': subjects,\n\
             'paged': paged, 'detail': detail, 'nosubject': nosubject}, default=str))\n",
        &[id_of(PROFILE), id_of(ANCHOR), ANCHOR, PROFILE],
    );
    use serde_json::json;
    assert_eq!(
        out["put"],
        json!([
            {"certificateField": "x509Issuer", "mappingRules": [{"specifier": "*"}]},
            {"certificateField": "x509SAN", "mappingRules": [
                {"specifier": "DNS"}, {"specifier": "URI"}, {"specifier": "Name/*"}]},
            {"certificateField": "x509Subject", "mappingRules": [{"specifier": "CN"}, {"specifier": "OU"}]},
        ])
    );
    assert_eq!(
        out["deleted"][1],
        json!({"certificateField": "x509SAN", "mappingRules": [{"specifier": "URI"}]})
    );
    assert_eq!(out["got"], out["deleted"]);
    assert_eq!(
        out["badfield"],
        json!(["ValidationException", "ValidationException", 400])
    );
    assert_eq!(out["longspec"][0], "ValidationException");
    assert_eq!(out["tags"], json!([{"key": "team", "value": "infra"}]));
    assert_eq!(
        out["many"],
        json!(["TooManyTagsException", "TooManyTagsException", 400])
    );
    assert_eq!(
        out["badtag"],
        json!(["ValidationException", "ValidationException", 400])
    );
    assert_eq!(
        out["notag"],
        json!([
            "ResourceNotFoundException",
            "ResourceNotFoundException",
            404
        ])
    );
    assert_eq!(
        out["put_n"],
        json!([
            {"enabled": true, "event": "CA_CERTIFICATE_EXPIRY", "threshold": 45, "channel": "ALL",
             "configuredBy": "rolesanywhere.amazonaws.com"},
            {"enabled": false, "event": "END_ENTITY_CERTIFICATE_EXPIRY", "threshold": 10, "channel": "ALL",
             "configuredBy": "123456789012"},
        ])
    );
    assert_eq!(out["got_n"], out["put_n"]);
    assert_eq!(out["badn"][0], "ValidationException");
    assert_eq!(
        out["reset"][1]["configuredBy"],
        "rolesanywhere.amazonaws.com"
    );
    assert_eq!(out["reset"][1]["threshold"], 45);
    assert_eq!(out["reset"][1]["enabled"], true);

    // Subjects: b, then a (seen last); one per page through botocore's paginator.
    let subjects = out["subjects"].as_array().expect("subjects");
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    assert!(
        subjects[0]["x509Subject"]
            .as_str()
            .is_some_and(|s| s.contains("CN=host-b"))
    );
    assert_eq!(subjects[1]["subjectArn"], subject_arn.as_str());
    assert_eq!(
        out["paged"],
        json!([[subjects[0]["subjectId"]], [subjects[1]["subjectId"]]])
    );
    let detail = &out["detail"];
    assert_eq!(detail["subjectArn"], subject_arn.as_str());
    assert_ne!(detail["lastSeenAt"], detail["createdAt"]);
    let credential = &detail["credentials"][0];
    assert_eq!(credential["serialNumber"], a.serial_decimal.as_str());
    assert_eq!(credential["failed"], false);
    assert!(
        credential["issuer"]
            .as_str()
            .is_some_and(|s| s.contains("Test Root")),
        "{credential}"
    );
    assert_eq!(
        der_of(credential["x509CertificateData"].as_str().expect("pem")),
        der_of(&a.cert_pem)
    );
    assert_eq!(out["nosubject"][0], "ResourceNotFoundException");

    // A sighting after the last change: it alone does not rewrite the file, stopping does.
    assert_eq!(create_session(&server, &a, ANCHOR, PROFILE).status, 201);
    let last_seen = boto3(
        &url,
        SECRET,
        "print(json.dumps([x['lastSeenAt'] for x in c.list_subjects()['subjects']], default=str))\n",
        &[],
    );
    assert_ne!(last_seen[1], detail["lastSeenAt"]);

    // Restart: mappings, tags, notification settings and subjects come back from the file.
    drop(server);
    let server = start(&config);
    let after = boto3(
        &server.url(),
        SECRET,
        "s = c.list_subjects()['subjects']\n\
         print(json.dumps({'mappings': c.get_profile(profileId=sys.argv[4])['profile']['attributeMappings'],\n\
             'tags': c.list_tags_for_resource(resourceArn=sys.argv[5])['tags'],\n\
             'last': [x['lastSeenAt'] for x in s]}, default=str))\n",
        &[id_of(PROFILE), ANCHOR],
    );
    assert_eq!(after["mappings"], out["got"]);
    assert_eq!(after["tags"], json!([{"key": "team", "value": "infra"}]));
    assert_eq!(after["last"], last_seen);
}

#[test]
fn aws_cli_puts_and_deletes_an_attribute_mapping_and_lists_tags() {
    let (_tmp, config) = setup();
    let server = start(&config);
    let aws = |args: &[&str]| aws_cli(&server.url(), args);
    let (code, out, err) = aws(&[
        "rolesanywhere",
        "put-attribute-mapping",
        "--profile-id",
        id_of(PROFILE),
        "--certificate-field",
        "x509Subject",
        "--mapping-rules",
        "specifier=CN",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let put: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        put["profile"]["attributeMappings"][2],
        serde_json::json!({"certificateField": "x509Subject", "mappingRules": [{"specifier": "CN"}]})
    );
    let (code, out, err) = aws(&[
        "rolesanywhere",
        "delete-attribute-mapping",
        "--profile-id",
        id_of(PROFILE),
        "--certificate-field",
        "x509SAN",
        "--specifiers",
        "DNS",
        "URI",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let deleted: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        deleted["profile"]["attributeMappings"][1],
        serde_json::json!({"certificateField": "x509SAN", "mappingRules": [{"specifier": "Name/*"}]})
    );
    let (code, _, err) = aws(&[
        "rolesanywhere",
        "tag-resource",
        "--resource-arn",
        PROFILE,
        "--tags",
        "key=team,value=infra",
        "key=owner,value=ops@example.com",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = aws(&[
        "rolesanywhere",
        "list-tags-for-resource",
        "--resource-arn",
        PROFILE,
    ]);
    assert_eq!(code, Some(0), "{err}");
    let listed: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        listed["tags"],
        serde_json::json!([{"key": "team", "value": "infra"}, {"key": "owner", "value": "ops@example.com"}])
    );
    let (code, _, err) = aws(&[
        "rolesanywhere",
        "list-tags-for-resource",
        "--resource-arn",
        "arn:aws:rolesanywhere:us-east-1:123456789012:crl/00000000-0000-4000-8000-000000000000",
    ]);
    assert!(matches!(code, Some(254 | 255)), "{code:?} {err}");
    assert!(err.contains("ResourceNotFoundException"), "{err}");
}
