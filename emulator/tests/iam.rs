//! IAM roles with trust policies through the IAM query API, driven by real clients: boto3's `iam`
//! client and `aws iam` with `--endpoint-url` and the `[admin]` credentials; errors as botocore's
//! modeled exception classes; roles kept across restarts and seeded from `[[roles]]`
//! (`trust_policy` / `trust_policy_file`); IAM roles reaching CreateSession's snapshot.

mod support;

use std::path::Path;
use std::process::Command;

use rolesanywhere_emulator::ca::{Ca, KeyType};
use rolesanywhere_emulator::config::{Config, Settings};
use rolesanywhere_emulator::server::{self, Running, ServeOptions, Tls};
use support::*;

const KEY_ID: &str = "AKIAEMULATORADMIN001";
const SECRET: &str = "emulator/admin+secret/0123456789abcdefghij";

/// The trust policy of the seeds' "Create the IAM Role" step, verbatim.
const SEEDS_TRUST_POLICY: &str = include_str!("../testdata/seeds-trust-policy.json");

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

/// A root CA and the standard configuration with `[admin]`, `roles_extra` appended to its
/// `[[roles]]` entry and `region` in place of us-east-1.
fn setup_with(region: &str, roles_extra: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().expect("tempdir");
    Ca::init(&tmp.path().join("root"), KeyType::EcP256, "Test Root").expect("root CA");
    let toml = format!(
        "{}{roles_extra}\n[admin]\naccess_key_id = \"{KEY_ID}\"\nsecret_access_key = \"{SECRET}\"\n",
        config_toml(tmp.path(), "", "")
            .replace("region = \"us-east-1\"", &format!("region = \"{region}\""))
    );
    let path = tmp.path().join("config.toml");
    std::fs::write(&path, toml).expect("config");
    (tmp, path)
}

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    setup_with("us-east-1", "")
}

/// Runs a python3 script with boto3's `iam` client `c` (and `ra`, the `rolesanywhere` client)
/// against `url`; returns its stdout as JSON. `err(f)` gives `[class, code, status]`.
fn boto3(url: &str, secret: &str, script: &str, args: &[&str]) -> serde_json::Value {
    let prelude = r#"import boto3, botocore, json, sys
def client(service, region='us-east-1', key=sys.argv[2], secret=sys.argv[3], **kw):
    return boto3.client(service, endpoint_url=sys.argv[1], region_name=region,
        aws_access_key_id=key, aws_secret_access_key=secret,
        config=botocore.config.Config(retries={'max_attempts': 1}, parameter_validation=False, **kw))
c = client('iam')
ra = client('rolesanywhere')
"#;
    let mut argv = vec![url, KEY_ID, secret];
    argv.extend_from_slice(args);
    python_json(prelude, script, &argv)
}

/// CreateSession through the seeded anchor for `role` and `profile`, asking `duration` seconds.
fn create_session(
    server: &Running,
    id: &Identity,
    profile: &str,
    role: &str,
    duration: u32,
) -> Response {
    create_session_at(&server.url(), id, ANCHOR, profile, role, duration)
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).expect("JSON")
}

#[test]
fn boto3_creates_gets_updates_lists_and_deletes_roles_with_the_seeds_trust_policy() {
    let (_tmp, config) = setup();
    let server = start(&config);
    let narrowed = SEEDS_TRUST_POLICY.replace("backup-server.corp", "backup-server-02.corp");
    let out = boto3(
        &server.url(),
        SECRET,
        "doc = sys.argv[4]\n\
         r = c.create_role(RoleName='OnPremBackupRole', AssumeRolePolicyDocument=doc, Path='/onprem/',\n\
             Description='backup server role', MaxSessionDuration=7200,\n\
             Tags=[{'Key': 'team', 'Value': 'storage'}])['Role']\n\
         g = c.get_role(RoleName='OnPremBackupRole')['Role']\n\
         dup = err(lambda: c.create_role(RoleName='onprembackuprole', AssumeRolePolicyDocument=doc))\n\
         bad = err(lambda: c.create_role(RoleName='Bad', AssumeRolePolicyDocument=doc.replace('\"Effect\"', '\"Resource\": \"*\", \"Effect\"')))\n\
         badname = err(lambda: c.create_role(RoleName='no spaces', AssumeRolePolicyDocument=doc))\n\
         c.update_assume_role_policy(RoleName='OnPremBackupRole', PolicyDocument=sys.argv[5])\n\
         u = c.get_role(RoleName='OnPremBackupRole')['Role']['AssumeRolePolicyDocument']\n\
         badupdate = err(lambda: c.update_assume_role_policy(RoleName='OnPremBackupRole', PolicyDocument='{}'))\n\
         for n in ['r1', 'r2', 'r3']:\n\
         \x20   c.create_role(RoleName=n, AssumeRolePolicyDocument=doc)\n\
         first = c.list_roles(MaxItems=2)\n\
         second = c.list_roles(MaxItems=2, Marker=first['Marker'])\n\
         paged = [[x['RoleName'] for x in p['Roles']] for p in c.get_paginator('list_roles').paginate(PaginationConfig={'PageSize': 2})]\n\
         onprem = [x['RoleName'] for x in c.list_roles(PathPrefix='/onprem/')['Roles']]\n\
         c.delete_role(RoleName='OnPremBackupRole')\n\
         gone = err(lambda: c.get_role(RoleName='OnPremBackupRole'))\n\
         gonedelete = err(lambda: c.delete_role(RoleName='OnPremBackupRole'))\n\
         print(json.dumps({'created': r, 'got': g, 'updated': u, 'dup': dup, 'bad': bad, 'badname': badname,\n\
             'badupdate': badupdate, 'first': [first['IsTruncated'], [x['RoleName'] for x in first['Roles']]],\n\
             'second': [second['IsTruncated'], [x['RoleName'] for x in second['Roles']]],\n\
             'paged': paged, 'onprem': onprem, 'gone': gone, 'gonedelete': gonedelete,\n\
             'after': [x['RoleName'] for x in c.list_roles()['Roles']]}, default=str))\n",
        &[SEEDS_TRUST_POLICY, &narrowed],
    );
    let created = &out["created"];
    assert_eq!(created["RoleName"], "OnPremBackupRole");
    assert_eq!(created["Path"], "/onprem/");
    assert_eq!(
        created["Arn"],
        "arn:aws:iam::123456789012:role/onprem/OnPremBackupRole"
    );
    let role_id = created["RoleId"].as_str().expect("RoleId");
    assert!(
        role_id.len() == 21
            && role_id.starts_with("AROA")
            && role_id
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
        "{role_id}"
    );
    assert_eq!(created["MaxSessionDuration"], 7200);
    assert_eq!(created["Description"], "backup server role");
    assert_eq!(
        created["Tags"],
        serde_json::json!([{"Key": "team", "Value": "storage"}])
    );
    // botocore decoded the URL-encoded document back into the same JSON, as a dict.
    assert_eq!(
        created["AssumeRolePolicyDocument"],
        json(SEEDS_TRUST_POLICY)
    );
    let got = &out["got"];
    assert_eq!(got["AssumeRolePolicyDocument"], json(SEEDS_TRUST_POLICY));
    assert!(got["AssumeRolePolicyDocument"].is_object());
    assert_eq!(got["RoleId"], role_id, "RoleId is stable");
    assert_eq!(got["CreateDate"], created["CreateDate"]);
    assert_eq!(out["updated"], json(&narrowed));
    // Modeled errors raise the model's exception classes.
    assert_eq!(
        out["dup"],
        serde_json::json!(["EntityAlreadyExistsException", "EntityAlreadyExists", 409])
    );
    assert_eq!(
        out["bad"],
        serde_json::json!([
            "MalformedPolicyDocumentException",
            "MalformedPolicyDocument",
            400
        ])
    );
    assert_eq!(
        out["badupdate"],
        serde_json::json!([
            "MalformedPolicyDocumentException",
            "MalformedPolicyDocument",
            400
        ])
    );
    assert_eq!(
        out["badname"],
        serde_json::json!(["ClientError", "ValidationError", 400])
    );
    assert_eq!(
        out["gone"],
        serde_json::json!(["NoSuchEntityException", "NoSuchEntity", 404])
    );
    assert_eq!(out["gonedelete"], out["gone"]);
    // The seeded role first, then the created ones, in pages.
    assert_eq!(
        out["first"],
        serde_json::json!([true, ["EmulatorRole", "OnPremBackupRole"]])
    );
    assert_eq!(out["second"], serde_json::json!([true, ["r1", "r2"]]));
    assert_eq!(
        out["paged"],
        serde_json::json!([["EmulatorRole", "OnPremBackupRole"], ["r1", "r2"], ["r3"]])
    );
    assert_eq!(out["onprem"], serde_json::json!(["OnPremBackupRole"]));
    assert_eq!(
        out["after"],
        serde_json::json!(["EmulatorRole", "r1", "r2", "r3"])
    );
}

#[test]
fn malformed_policy_document_carries_the_policy_parsers_message() {
    let (_tmp, config) = setup();
    let server = start(&config);
    let out = boto3(
        &server.url(),
        SECRET,
        "try:\n\
         \x20   c.create_role(RoleName='x', AssumeRolePolicyDocument=sys.argv[4])\n\
         except c.exceptions.MalformedPolicyDocumentException as e:\n\
         \x20   print(json.dumps(e.response['Error']['Message']))\n",
        &[&SEEDS_TRUST_POLICY.replace("\"Principal\"", "\"NotPrincipal\"")],
    );
    let message = out.as_str().expect("message");
    assert!(
        message.contains("Statement[0] uses NotPrincipal"),
        "{message}"
    );
}

#[test]
fn iam_roles_and_trust_policies_reach_create_session_and_role_ids_match_the_issued_sessions() {
    let (tmp, config) = setup();
    let server = start(&config);
    let ca = Ca::load(&tmp.path().join("root")).expect("CA");
    let client = leaf(&ca, KeyType::EcP256, "backup-server.corp.example.com");
    // The seeds' policy naming this emulator's anchor: it allows the client.
    let allowing = SEEDS_TRUST_POLICY.replace(
        "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/abcd1234-ef56-gh78-ij90-klmnopqrstuv",
        ANCHOR,
    );
    // A profile allowing 12 h for a role created through IAM with a 1 h maximum.
    let out = boto3(
        &server.url(),
        SECRET,
        "r = c.create_role(RoleName='Backup', AssumeRolePolicyDocument=sys.argv[4])['Role']\n\
         p = ra.create_profile(name='backup', roleArns=[r['Arn']], durationSeconds=43200, enabled=True)['profile']\n\
         print(json.dumps([r['Arn'], p['profileArn'], c.get_role(RoleName='EmulatorRole')['Role']['RoleId']]))\n",
        &[&allowing],
    );
    let role = out[0].as_str().expect("arn");
    let profile = out[1].as_str().expect("arn");
    let r = create_session(&server, &client, profile, role, 7200);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("maximum session duration 3600"),
        "{}",
        r.body
    );
    // The role recreated with a 12 h maximum: CreateSession sees it.
    boto3(
        &server.url(),
        SECRET,
        "c.delete_role(RoleName='Backup')\n\
         c.create_role(RoleName='Backup', AssumeRolePolicyDocument=sys.argv[4], MaxSessionDuration=43200)\n\
         print('null')\n",
        &[&allowing],
    );
    let r = create_session(&server, &client, profile, role, 7200);
    assert_eq!(r.status, 201, "{}", r.body);
    // The trust policy updated through IAM to name another host: CreateSession evaluates the new
    // one and refuses.
    boto3(
        &server.url(),
        SECRET,
        "c.update_assume_role_policy(RoleName='Backup', PolicyDocument=sys.argv[4])\n\
         print('null')\n",
        &[&allowing.replace("backup-server.corp", "other-server.corp")],
    );
    let r = create_session(&server, &client, profile, role, 7200);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("Unable to assume role"), "{}", r.body);
    // The seeded role's RoleId is the AROA… part of the sessions' assumedRoleId.
    let r = create_session(&server, &client, PROFILE, ROLE, 3600);
    assert_eq!(r.status, 201, "{}", r.body);
    let assumed = r.json()["credentialSet"][0]["assumedRoleUser"]["assumedRoleId"]
        .as_str()
        .expect("assumedRoleId")
        .to_string();
    assert_eq!(assumed.split(':').next(), out[2].as_str(), "{assumed}");
}

#[test]
fn aws_cli_creates_a_role_from_a_trust_file_and_gets_it() {
    if Command::new("aws").arg("--version").output().is_err() {
        panic!("the AWS CLI is required (scripts/install-deps installs awscli)");
    }
    let (tmp, config) = setup();
    let server = start(&config);
    let trust = tmp.path().join("trust.json");
    std::fs::write(&trust, SEEDS_TRUST_POLICY).expect("trust.json");
    let aws = |args: &[&str]| {
        let out = Command::new("aws")
            .args(args)
            .args(["--endpoint-url", &server.url()])
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .output()
            .expect("aws");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let file = format!("file://{}", trust.display());
    let (code, out, err) = aws(&[
        "iam",
        "create-role",
        "--role-name",
        "OnPremBackupRole",
        "--assume-role-policy-document",
        &file,
    ]);
    assert_eq!(code, Some(0), "{err}");
    let created = json(&out);
    assert_eq!(
        created["Role"]["Arn"],
        "arn:aws:iam::123456789012:role/OnPremBackupRole"
    );
    let (code, out, err) = aws(&["iam", "get-role", "--role-name", "OnPremBackupRole"]);
    assert_eq!(code, Some(0), "{err}");
    let got = json(&out);
    assert_eq!(
        got["Role"]["AssumeRolePolicyDocument"],
        json(SEEDS_TRUST_POLICY)
    );
    assert_eq!(got["Role"]["RoleId"], created["Role"]["RoleId"]);
    let (code, _, err) = aws(&["iam", "get-role", "--role-name", "Missing"]);
    assert!(matches!(code, Some(254 | 255)), "{code:?} {err}");
    assert!(
        err.contains("NoSuchEntity") && err.contains("The role with name Missing cannot be found"),
        "{err}"
    );
    let (code, _, err) = aws(&[
        "iam",
        "create-role",
        "--role-name",
        "OnPremBackupRole",
        "--assume-role-policy-document",
        &file,
    ]);
    assert!(matches!(code, Some(254 | 255)), "{code:?} {err}");
    assert!(err.contains("EntityAlreadyExists"), "{err}");
}

#[test]
fn roles_survive_a_restart_and_the_config_seeds_them_with_their_trust_policy() {
    let (tmp, config) = setup_with("us-east-1", "trust_policy_file = \"trust/role.json\"\n");
    std::fs::create_dir(tmp.path().join("trust")).expect("dir");
    std::fs::write(tmp.path().join("trust/role.json"), SEEDS_TRUST_POLICY).expect("trust");
    // A state file written before roles were kept still loads.
    let state = tmp.path().join("config.toml.state.json");
    std::fs::write(
        &state,
        "{\"trust_anchors\": [], \"profiles\": [], \"crls\": []}",
    )
    .expect("old state");
    let server = start(&config);
    let listed = "print(json.dumps([[x['RoleName'], x['Path'], x.get('AssumeRolePolicyDocument'), x['MaxSessionDuration']]\n\
         \x20   for x in c.list_roles()['Roles']]))\n";
    let before = boto3(
        &server.url(),
        SECRET,
        &format!(
            "c.create_role(RoleName='Created', AssumeRolePolicyDocument=sys.argv[4], MaxSessionDuration=10800)\n{listed}"
        ),
        &[SEEDS_TRUST_POLICY],
    );
    let expected = serde_json::json!([
        ["EmulatorRole", "/test/", json(SEEDS_TRUST_POLICY), 7200],
        ["Created", "/", json(SEEDS_TRUST_POLICY), 10800]
    ]);
    assert_eq!(before, expected);
    drop(server);
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(&state).expect("state file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let saved = json(&std::fs::read_to_string(&state).expect("state"));
    assert_eq!(saved["roles"][1]["name"], "Created");

    // After a restart the created role is still there, and a seeded role changed through the
    // API keeps its change (the configuration seeds only roles the state does not hold).
    let server = start(&config);
    let after = boto3(&server.url(), SECRET, listed, &[]);
    assert_eq!(after, expected);
    boto3(
        &server.url(),
        SECRET,
        "c.update_assume_role_policy(RoleName='EmulatorRole', PolicyDocument=sys.argv[4])\n\
         c.delete_role(RoleName='Created')\n\
         print('null')\n",
        &[&SEEDS_TRUST_POLICY.replace("backup-server", "other")],
    );
    drop(server);
    let server = start(&config);
    let last = boto3(&server.url(), SECRET, listed, &[]);
    assert_eq!(
        last,
        serde_json::json!([[
            "EmulatorRole",
            "/test/",
            json(&SEEDS_TRUST_POLICY.replace("backup-server", "other")),
            7200
        ]])
    );
}

#[test]
fn iam_refuses_other_signatures_with_iams_error_codes_and_accepts_both_regions() {
    let (_tmp, config) = setup_with("eu-west-1", "");
    let server = start(&config);
    let out = boto3(
        &server.url(),
        "not-the-secret",
        "wrong = err(lambda: c.list_roles())\n\
         unknown = err(lambda: client('iam', key='AKIAUNKNOWN000000000').list_roles())\n\
         unsigned = err(lambda: client('iam', signature_version=botocore.UNSIGNED).list_roles())\n\
         s = sys.argv[4]\n\
         ours = len(client('iam', region='eu-west-1', secret=s).list_roles()['Roles'])\n\
         iams = len(client('iam', region='us-east-1', secret=s).list_roles()['Roles'])\n\
         other = err(lambda: client('iam', region='ap-south-1', secret=s).list_roles())\n\
         sts = err(lambda: client('sts', region='eu-west-1', secret=s).get_caller_identity())\n\
         unknown_action = err(lambda: client('iam', secret=s).list_users())\n\
         print(json.dumps([wrong, unknown, unsigned, ours, iams, other, sts, unknown_action]))\n",
        &[SECRET],
    );
    assert_eq!(
        out,
        serde_json::json!([
            ["ClientError", "SignatureDoesNotMatch", 403],
            ["ClientError", "InvalidClientTokenId", 403],
            ["ClientError", "MissingAuthenticationToken", 403],
            1,
            1,
            ["ClientError", "SignatureDoesNotMatch", 403],
            // The admin key is not an STS session's.
            ["ClientError", "InvalidClientTokenId", 403],
            ["ClientError", "InvalidAction", 400]
        ])
    );
}

#[test]
fn config_trust_policies_are_validated_at_load() {
    let tmp = tempfile::tempdir().expect("tempdir");
    Ca::init(&tmp.path().join("root"), KeyType::EcP256, "Test Root").expect("root CA");
    std::fs::write(tmp.path().join("trust.json"), SEEDS_TRUST_POLICY).expect("trust");
    std::fs::write(tmp.path().join("bad.json"), "{\"Statement\": []").expect("bad");
    let base = config_toml(tmp.path(), "", "");
    let load = |extra: &str| Config::from_toml_str(&format!("{base}{extra}"), tmp.path());

    let inline = format!("trust_policy = '''{SEEDS_TRUST_POLICY}'''\n");
    let c = load(&inline).expect("inline policy");
    assert_eq!(
        c.role(ROLE).and_then(|r| r.trust_policy.as_deref()),
        Some(SEEDS_TRUST_POLICY)
    );
    assert_eq!(c.role(ROLE).map(|r| r.name()), Some("EmulatorRole"));
    let c = load("trust_policy_file = \"trust.json\"\n").expect("policy file");
    assert_eq!(
        c.role(ROLE).and_then(|r| r.trust_policy.as_deref()),
        Some(SEEDS_TRUST_POLICY)
    );
    assert_eq!(
        load("")
            .expect("none")
            .role(ROLE)
            .map(|r| r.trust_policy.clone()),
        Some(None)
    );

    for (extra, wanted) in [
        (
            format!("{inline}trust_policy_file = \"trust.json\"\n"),
            "roles[0]: trust_policy and trust_policy_file are both set",
        ),
        (
            "trust_policy = '{\"Version\": \"2012-10-17\"}'\n".to_string(),
            "roles[0].trust_policy: not a valid trust policy: policy has no Statement",
        ),
        (
            "trust_policy_file = \"bad.json\"\n".to_string(),
            "roles[0].trust_policy_file: ",
        ),
        (
            "trust_policy_file = \"missing.json\"\n".to_string(),
            "roles[0].trust_policy_file: cannot read",
        ),
        (
            "[[roles]]\narn = \"arn:aws:iam::123456789012:role/other/emulatorrole\"\n".to_string(),
            "roles[1].arn: role name emulatorrole is already used by roles[0]",
        ),
        (
            "[[roles]]\narn = \"arn:aws:iam::123456789012:role/has space\"\n".to_string(),
            "roles[1].arn: ",
        ),
        (
            "[[roles]]\narn = \"arn:aws:iam::123456789012:user/x\"\n".to_string(),
            "roles[1].arn: ",
        ),
    ] {
        let e = format!("{:#}", load(&extra).expect_err(&extra));
        assert!(e.contains(wanted), "{extra}: {e}");
    }
    let e = format!(
        "{:#}",
        load("trust_policy_file = \"bad.json\"\n").unwrap_err()
    );
    assert!(
        e.contains("bad.json") && e.contains("not valid JSON"),
        "{e}"
    );
}
