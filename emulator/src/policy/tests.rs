//! Table-driven tests of the trust-policy engine.

use super::*;

const CN: &str = "aws:PrincipalTag/x509Subject/CN";
const ANCHOR: &str = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0a1b2c3d-1111-2222-3333-444455556666";

/// One Allow statement for Roles Anywhere and `sts:AssumeRole` with this `Condition` block.
fn allow_with(condition: &str) -> Policy {
    let doc = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow",
            "Principal":{{"Service":"rolesanywhere.amazonaws.com"}},
            "Action":"sts:AssumeRole","Condition":{condition}}}]}}"#
    );
    match Policy::parse(&doc) {
        Ok(p) => p,
        Err(e) => panic!("test policy {condition} does not parse: {e}"),
    }
}

fn ctx(keys: &[(&str, &[&str])]) -> RequestContext {
    keys.iter()
        .fold(RequestContext::roles_anywhere(), |c, (k, v)| {
            c.with_key(k, v.iter().copied())
        })
}

struct Case {
    name: &'static str,
    condition: &'static str,
    keys: &'static [(&'static str, &'static [&'static str])],
    allowed: bool,
}

const TAG_KEYS: &str = "aws:TagKeys";

#[rustfmt::skip]
const CASES: &[Case] = &[
    // StringEquals: exact, case-sensitive, any listed value, false when the key is absent.
    Case { name: "StringEquals match", condition: r#"{"StringEquals":{"aws:PrincipalTag/x509Subject/CN":"web"}}"#, keys: &[(CN, &["web"])], allowed: true },
    Case { name: "StringEquals mismatch", condition: r#"{"StringEquals":{"aws:PrincipalTag/x509Subject/CN":"web"}}"#, keys: &[(CN, &["db"])], allowed: false },
    Case { name: "StringEquals is case-sensitive", condition: r#"{"StringEquals":{"aws:PrincipalTag/x509Subject/CN":"web"}}"#, keys: &[(CN, &["Web"])], allowed: false },
    Case { name: "StringEquals absent key", condition: r#"{"StringEquals":{"aws:PrincipalTag/x509Subject/CN":"web"}}"#, keys: &[], allowed: false },
    Case { name: "StringEquals values are OR", condition: r#"{"StringEquals":{"aws:PrincipalTag/x509Subject/CN":["db","web"]}}"#, keys: &[(CN, &["web"])], allowed: true },
    Case { name: "StringEquals boolean value compares as text", condition: r#"{"StringEquals":{"aws:PrincipalTag/x509Subject/OU":true}}"#, keys: &[("aws:PrincipalTag/x509Subject/OU", &["true"])], allowed: true },
    Case { name: "StringEquals number value compares as text", condition: r#"{"StringEquals":{"aws:PrincipalTag/x509Subject/OU":42}}"#, keys: &[("aws:PrincipalTag/x509Subject/OU", &["42"])], allowed: true },
    // StringNotEquals: true when no value matches, and true when the tag was dropped.
    Case { name: "StringNotEquals equal value", condition: r#"{"StringNotEquals":{"aws:PrincipalTag/x509Subject/CN":"web"}}"#, keys: &[(CN, &["web"])], allowed: false },
    Case { name: "StringNotEquals other value", condition: r#"{"StringNotEquals":{"aws:PrincipalTag/x509Subject/CN":"web"}}"#, keys: &[(CN, &["db"])], allowed: true },
    Case { name: "StringNotEquals dropped tag is true", condition: r#"{"StringNotEquals":{"aws:PrincipalTag/x509Subject/CN":"web"}}"#, keys: &[], allowed: true },
    Case { name: "StringNotEquals any listed value refuses", condition: r#"{"StringNotEquals":{"aws:PrincipalTag/x509Subject/CN":["db","web"]}}"#, keys: &[(CN, &["web"])], allowed: false },
    // IgnoreCase forms.
    Case { name: "StringEqualsIgnoreCase", condition: r#"{"StringEqualsIgnoreCase":{"aws:PrincipalTag/x509Subject/CN":"WEB"}}"#, keys: &[(CN, &["web"])], allowed: true },
    Case { name: "StringEqualsIgnoreCase mismatch", condition: r#"{"StringEqualsIgnoreCase":{"aws:PrincipalTag/x509Subject/CN":"WEB"}}"#, keys: &[(CN, &["db"])], allowed: false },
    Case { name: "StringEqualsIgnoreCase absent", condition: r#"{"StringEqualsIgnoreCase":{"aws:PrincipalTag/x509Subject/CN":"WEB"}}"#, keys: &[], allowed: false },
    Case { name: "StringNotEqualsIgnoreCase equal but for case", condition: r#"{"StringNotEqualsIgnoreCase":{"aws:PrincipalTag/x509Subject/CN":"WEB"}}"#, keys: &[(CN, &["web"])], allowed: false },
    Case { name: "StringNotEqualsIgnoreCase other", condition: r#"{"StringNotEqualsIgnoreCase":{"aws:PrincipalTag/x509Subject/CN":"WEB"}}"#, keys: &[(CN, &["db"])], allowed: true },
    Case { name: "StringNotEqualsIgnoreCase absent", condition: r#"{"StringNotEqualsIgnoreCase":{"aws:PrincipalTag/x509Subject/CN":"WEB"}}"#, keys: &[], allowed: true },
    // StringLike / StringNotLike: `*` and `?`, case-sensitive.
    Case { name: "StringLike star", condition: r#"{"StringLike":{"aws:PrincipalTag/x509Subject/CN":"web-*"}}"#, keys: &[(CN, &["web-01.example.com"])], allowed: true },
    Case { name: "StringLike question marks count", condition: r#"{"StringLike":{"aws:PrincipalTag/x509Subject/CN":"web-??"}}"#, keys: &[(CN, &["web-1"])], allowed: false },
    Case { name: "StringLike question mark", condition: r#"{"StringLike":{"aws:PrincipalTag/x509Subject/CN":"web-??"}}"#, keys: &[(CN, &["web-12"])], allowed: true },
    Case { name: "StringLike is case-sensitive", condition: r#"{"StringLike":{"aws:PrincipalTag/x509Subject/CN":"WEB-*"}}"#, keys: &[(CN, &["web-01"])], allowed: false },
    Case { name: "StringLike star on absent key", condition: r#"{"StringLike":{"aws:PrincipalTag/x509Subject/CN":"*"}}"#, keys: &[], allowed: false },
    Case { name: "StringNotLike matching", condition: r#"{"StringNotLike":{"aws:PrincipalTag/x509Subject/CN":"*.test"}}"#, keys: &[(CN, &["web.test"])], allowed: false },
    Case { name: "StringNotLike other", condition: r#"{"StringNotLike":{"aws:PrincipalTag/x509Subject/CN":"*.test"}}"#, keys: &[(CN, &["web.prod"])], allowed: true },
    Case { name: "StringNotLike absent", condition: r#"{"StringNotLike":{"aws:PrincipalTag/x509Subject/CN":"*.test"}}"#, keys: &[], allowed: true },
    // ARN operators: six parts, each with wildcards, case-sensitive; ArnEquals behaves as ArnLike.
    Case { name: "ArnEquals exact", condition: r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0a1b2c3d-1111-2222-3333-444455556666"}}"#, keys: &[("aws:SourceArn", &[ANCHOR])], allowed: true },
    Case { name: "ArnEquals other account", condition: r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:rolesanywhere:us-east-1:210987654321:trust-anchor/0a1b2c3d-1111-2222-3333-444455556666"}}"#, keys: &[("aws:SourceArn", &[ANCHOR])], allowed: false },
    Case { name: "ArnEquals with wildcards", condition: r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:rolesanywhere:*:123456789012:trust-anchor/*"}}"#, keys: &[("aws:SourceArn", &[ANCHOR])], allowed: true },
    Case { name: "ArnEquals is case-sensitive", condition: r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:rolesanywhere:US-EAST-1:123456789012:trust-anchor/*"}}"#, keys: &[("aws:SourceArn", &[ANCHOR])], allowed: false },
    Case { name: "ArnEquals absent", condition: r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:rolesanywhere:*:*:*"}}"#, keys: &[], allowed: false },
    Case { name: "ArnEquals request value not an ARN", condition: r#"{"ArnEquals":{"aws:SourceArn":"*"}}"#, keys: &[("aws:SourceArn", &["trust-anchor/x"])], allowed: false },
    Case { name: "ArnLike wildcard region and id", condition: r#"{"ArnLike":{"aws:SourceArn":"arn:aws:rolesanywhere:us-*-?:123456789012:trust-anchor/0a1b2c3d-*"}}"#, keys: &[("aws:SourceArn", &[ANCHOR])], allowed: true },
    Case { name: "ArnLike star does not cross parts", condition: r#"{"ArnLike":{"aws:SourceArn":"arn:aws:rolesanywhere:*:trust-anchor/*"}}"#, keys: &[("aws:SourceArn", &[ANCHOR])], allowed: false },
    Case { name: "ArnLike resource keeps its colons", condition: r#"{"ArnLike":{"aws:SourceArn":"arn:aws:rolesanywhere:us-east-1:123456789012:a:b:*"}}"#, keys: &[("aws:SourceArn", &["arn:aws:rolesanywhere:us-east-1:123456789012:a:b:c"])], allowed: true },
    Case { name: "ArnNotEquals same", condition: r#"{"ArnNotEquals":{"aws:SourceArn":"arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/0a1b2c3d-1111-2222-3333-444455556666"}}"#, keys: &[("aws:SourceArn", &[ANCHOR])], allowed: false },
    Case { name: "ArnNotEquals other", condition: r#"{"ArnNotEquals":{"aws:SourceArn":"arn:aws:rolesanywhere:eu-west-1:123456789012:trust-anchor/*"}}"#, keys: &[("aws:SourceArn", &[ANCHOR])], allowed: true },
    Case { name: "ArnNotEquals absent", condition: r#"{"ArnNotEquals":{"aws:SourceArn":"arn:aws:rolesanywhere:*:*:*"}}"#, keys: &[], allowed: true },
    Case { name: "ArnNotLike matching", condition: r#"{"ArnNotLike":{"aws:SourceArn":"arn:aws:rolesanywhere:*:123456789012:*"}}"#, keys: &[("aws:SourceArn", &[ANCHOR])], allowed: false },
    Case { name: "ArnNotLike other", condition: r#"{"ArnNotLike":{"aws:SourceArn":"arn:aws:rolesanywhere:*:999999999999:*"}}"#, keys: &[("aws:SourceArn", &[ANCHOR])], allowed: true },
    Case { name: "ArnNotLike absent", condition: r#"{"ArnNotLike":{"aws:SourceArn":"arn:aws:rolesanywhere:*:*:*"}}"#, keys: &[], allowed: true },
    // Null tests presence.
    Case { name: "Null true, key absent", condition: r#"{"Null":{"aws:PrincipalTag/x509Subject/CN":"true"}}"#, keys: &[], allowed: true },
    Case { name: "Null true, key present", condition: r#"{"Null":{"aws:PrincipalTag/x509Subject/CN":"true"}}"#, keys: &[(CN, &["web"])], allowed: false },
    Case { name: "Null false, key present", condition: r#"{"Null":{"aws:PrincipalTag/x509Subject/CN":false}}"#, keys: &[(CN, &["web"])], allowed: true },
    Case { name: "Null false, key absent", condition: r#"{"Null":{"aws:PrincipalTag/x509Subject/CN":"false"}}"#, keys: &[], allowed: false },
    Case { name: "Null false, empty value is present", condition: r#"{"Null":{"aws:PrincipalTag/x509Subject/CN":"false"}}"#, keys: &[(CN, &[""])], allowed: true },
    // IfExists: true when absent, the plain operator otherwise.
    Case { name: "StringEqualsIfExists absent", condition: r#"{"StringEqualsIfExists":{"aws:PrincipalTag/x509Subject/CN":"web"}}"#, keys: &[], allowed: true },
    Case { name: "StringEqualsIfExists mismatch", condition: r#"{"StringEqualsIfExists":{"aws:PrincipalTag/x509Subject/CN":"web"}}"#, keys: &[(CN, &["db"])], allowed: false },
    Case { name: "StringEqualsIfExists match", condition: r#"{"StringEqualsIfExists":{"aws:PrincipalTag/x509Subject/CN":"web"}}"#, keys: &[(CN, &["web"])], allowed: true },
    Case { name: "StringNotEqualsIfExists equal", condition: r#"{"StringNotEqualsIfExists":{"aws:PrincipalTag/x509Subject/CN":"web"}}"#, keys: &[(CN, &["web"])], allowed: false },
    Case { name: "StringLikeIfExists absent", condition: r#"{"StringLikeIfExists":{"aws:PrincipalTag/x509Subject/CN":"web-*"}}"#, keys: &[], allowed: true },
    Case { name: "ArnLikeIfExists absent", condition: r#"{"ArnLikeIfExists":{"aws:SourceArn":"arn:aws:rolesanywhere:*:*:*"}}"#, keys: &[], allowed: true },
    Case { name: "ArnEqualsIfExists mismatch", condition: r#"{"ArnEqualsIfExists":{"aws:SourceArn":"arn:aws:rolesanywhere:*:999999999999:*"}}"#, keys: &[("aws:SourceArn", &[ANCHOR])], allowed: false },
    // ForAnyValue / ForAllValues.
    Case { name: "ForAnyValue:StringEquals match", condition: r#"{"ForAnyValue:StringEquals":{"aws:PrincipalTag/x509Subject/CN":"web"}}"#, keys: &[(CN, &["web"])], allowed: true },
    Case { name: "ForAnyValue:StringEquals absent", condition: r#"{"ForAnyValue:StringEquals":{"aws:PrincipalTag/x509Subject/CN":"web"}}"#, keys: &[], allowed: false },
    Case { name: "ForAnyValue:StringNotEquals absent", condition: r#"{"ForAnyValue:StringNotEquals":{"aws:PrincipalTag/x509Subject/CN":"web"}}"#, keys: &[], allowed: false },
    Case { name: "ForAnyValue:StringEqualsIfExists absent", condition: r#"{"ForAnyValue:StringEqualsIfExists":{"aws:PrincipalTag/x509Subject/CN":"web"}}"#, keys: &[], allowed: true },
    Case { name: "ForAllValues:StringEquals absent", condition: r#"{"ForAllValues:StringEquals":{"aws:PrincipalTag/x509Subject/CN":"web"}}"#, keys: &[], allowed: true },
    Case { name: "ForAllValues:StringEquals empty", condition: r#"{"ForAllValues:StringEquals":{"aws:TagKeys":"x"}}"#, keys: &[(TAG_KEYS, &[])], allowed: true },
    Case { name: "ForAllValues:StringEquals match", condition: r#"{"ForAllValues:StringEquals":{"aws:PrincipalTag/x509Subject/CN":["web","db"]}}"#, keys: &[(CN, &["web"])], allowed: true },
    Case { name: "ForAllValues:StringEquals mismatch", condition: r#"{"ForAllValues:StringEquals":{"aws:PrincipalTag/x509Subject/CN":"web"}}"#, keys: &[(CN, &["db"])], allowed: false },
    Case { name: "ForAllValues:StringNotEquals absent", condition: r#"{"ForAllValues:StringNotEquals":{"aws:PrincipalTag/x509Subject/CN":"web"}}"#, keys: &[], allowed: true },
    Case { name: "ForAllValues:StringLike all match", condition: r#"{"ForAllValues:StringLike":{"aws:TagKeys":"x509Subject/*"}}"#, keys: &[(TAG_KEYS, &["x509Subject/CN", "x509Subject/OU"])], allowed: true },
    Case { name: "ForAllValues:StringEquals one of two", condition: r#"{"ForAllValues:StringEquals":{"aws:TagKeys":"x509Subject/CN"}}"#, keys: &[(TAG_KEYS, &["x509Subject/CN", "x509Subject/OU"])], allowed: false },
    Case { name: "ForAnyValue:StringEquals one of two", condition: r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":"x509Subject/CN"}}"#, keys: &[(TAG_KEYS, &["x509Subject/CN", "x509Subject/OU"])], allowed: true },
    Case { name: "ForAnyValue:StringNotEquals one differs", condition: r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":"x509Subject/CN"}}"#, keys: &[(TAG_KEYS, &["x509Subject/CN", "x509Subject/OU"])], allowed: true },
    Case { name: "ForAllValues:StringNotEquals one equal", condition: r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":"x509Subject/CN"}}"#, keys: &[(TAG_KEYS, &["x509Subject/CN", "x509Subject/OU"])], allowed: false },
    Case { name: "StringNotEquals multi-valued, one equal", condition: r#"{"StringNotEquals":{"aws:TagKeys":"x509Subject/CN"}}"#, keys: &[(TAG_KEYS, &["x509Subject/CN", "x509Subject/OU"])], allowed: false },
    Case { name: "ForAnyValue:ArnLike", condition: r#"{"ForAnyValue:ArnLike":{"aws:SourceArn":"arn:aws:rolesanywhere:*:123456789012:trust-anchor/*"}}"#, keys: &[("aws:SourceArn", &[ANCHOR])], allowed: true },
    // Key names are case-insensitive; AND across keys and operators.
    Case { name: "key name case-insensitive", condition: r#"{"StringEquals":{"AWS:principaltag/X509SUBJECT/cn":"web"}}"#, keys: &[(CN, &["web"])], allowed: true },
    Case { name: "AND across keys", condition: r#"{"StringEquals":{"aws:PrincipalTag/x509Subject/CN":"web","aws:PrincipalTag/x509Subject/OU":"ops"}}"#, keys: &[(CN, &["web"])], allowed: false },
    Case { name: "AND across keys, all hold", condition: r#"{"StringEquals":{"aws:PrincipalTag/x509Subject/CN":"web","aws:PrincipalTag/x509Subject/OU":"ops"}}"#, keys: &[(CN, &["web"]), ("aws:PrincipalTag/x509Subject/OU", &["ops"])], allowed: true },
    Case { name: "AND across operators", condition: r#"{"StringEquals":{"aws:PrincipalTag/x509Subject/CN":"web"},"ArnEquals":{"aws:SourceArn":"arn:aws:rolesanywhere:*:999999999999:*"}}"#, keys: &[(CN, &["web"]), ("aws:SourceArn", &[ANCHOR])], allowed: false },
    Case { name: "empty condition block", condition: r#"{}"#, keys: &[], allowed: true },
];

#[test]
fn condition_operator_table() {
    let mut failures = Vec::new();
    for case in CASES {
        let policy = allow_with(case.condition);
        let decision = policy.evaluate(&ctx(case.keys), &[ASSUME_ROLE]);
        if decision.is_allowed() != case.allowed {
            failures.push(format!(
                "{}: expected allowed={}, got {decision}",
                case.name, case.allowed
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn refusal_names_statement_and_failing_condition() {
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Sid":"OnlyWeb","Effect":"Allow",
        "Principal":{"Service":"rolesanywhere.amazonaws.com"},"Action":"sts:AssumeRole",
        "Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:rolesanywhere:*:*:*"},
                     "StringEquals":{"aws:PrincipalTag/x509Subject/CN":"web"}}}]}"#;
    let policy = Policy::parse(doc).unwrap();
    let d = policy.evaluate(
        &RequestContext::roles_anywhere()
            .with_source_arn(ANCHOR)
            .with_principal_tags([("x509Subject/CN", "db")]),
        &[ASSUME_ROLE],
    );
    assert!(!d.is_allowed());
    let r = d.refusal().unwrap();
    let Outcome::ImplicitDeny { misses } = &r.outcome else {
        panic!("expected an implicit deny, got {r:?}");
    };
    assert_eq!(misses.len(), 1);
    assert_eq!(misses[0].statement.index, 0);
    assert_eq!(misses[0].statement.sid.as_deref(), Some("OnlyWeb"));
    let MissReason::Condition(c) = &misses[0].reason else {
        panic!("expected a condition miss, got {:?}", misses[0].reason);
    };
    assert_eq!(c.operator, "StringEquals");
    assert_eq!(c.key, CN);
    assert_eq!(c.request_values.as_deref(), Some(&["db".to_string()][..]));
    assert_eq!(
        d.to_string(),
        r#"denied: sts:AssumeRole implicitly denied: Statement[0] (Sid "OnlyWeb"): condition StringEquals "aws:PrincipalTag/x509Subject/CN" ["web"] is false for request value ["db"]"#
    );
}

#[test]
fn decision_log_escapes_certificate_text() {
    let policy = allow_with(r#"{"StringEquals":{"aws:PrincipalTag/x509Subject/CN":"web"}}"#);
    let d = policy.evaluate(
        &RequestContext::roles_anywhere()
            .with_principal_tags([("x509Subject/CN", "evil\u{1b}[2J\nline")]),
        &[ASSUME_ROLE],
    );
    let text = d.to_string();
    assert!(!text.contains('\u{1b}') && !text.contains('\n'), "{text}");
    assert!(text.contains(r"evil\u{1b}[2J\nline"), "{text}");
}

fn decide(doc: &str, ctx: &RequestContext, actions: &[&str]) -> Decision {
    match Policy::parse(doc) {
        Ok(p) => p.evaluate(ctx, actions),
        Err(e) => panic!("policy does not parse: {e}\n{doc}"),
    }
}

const ALL_ACTIONS: &[&str] = &[ASSUME_ROLE, TAG_SESSION, SET_SOURCE_IDENTITY];

#[test]
fn explicit_deny_wins_over_allow() {
    let doc = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":{"Service":"rolesanywhere.amazonaws.com"},"Action":"sts:*"},
        {"Sid":"NoTest","Effect":"Deny","Principal":"*","Action":"sts:AssumeRole",
         "Condition":{"StringLike":{"aws:PrincipalTag/x509Subject/CN":"*.test"}}}]}"#;
    let test_host =
        RequestContext::roles_anywhere().with_principal_tags([("x509Subject/CN", "a.test")]);
    let d = decide(doc, &test_host, ALL_ACTIONS);
    assert!(!d.is_allowed());
    let r = d.refusal().unwrap();
    assert_eq!(r.action, ASSUME_ROLE);
    let Outcome::ExplicitDeny {
        statement,
        conditions,
    } = &r.outcome
    else {
        panic!("expected an explicit deny, got {r:?}");
    };
    assert_eq!(
        (statement.index, statement.sid.as_deref()),
        (1, Some("NoTest"))
    );
    assert_eq!(conditions.len(), 1);
    assert!(conditions[0].held);
    assert!(d.to_string().starts_with(
        r#"denied: sts:AssumeRole explicitly denied by Statement[1] (Sid "NoTest") because StringLike"#
    ), "{d}");
    // The other actions are still allowed by statement 0: the deny names only AssumeRole.
    assert!(
        matches!(d.actions[1].outcome, Outcome::Allowed { ref statement, .. } if statement.index == 0)
    );

    let prod_host =
        RequestContext::roles_anywhere().with_principal_tags([("x509Subject/CN", "a.prod")]);
    assert!(decide(doc, &prod_host, ALL_ACTIONS).is_allowed());
}

#[test]
fn deny_with_string_not_equals_applies_to_a_dropped_tag() {
    // The documented consequence of "a dropped tag makes StringNotEquals true", on a Deny.
    let doc = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Principal":{"Service":"rolesanywhere.amazonaws.com"},"Action":"sts:AssumeRole"},
        {"Effect":"Deny","Principal":{"Service":"rolesanywhere.amazonaws.com"},"Action":"sts:AssumeRole",
         "Condition":{"StringNotEquals":{"aws:PrincipalTag/x509Subject/OU":"ops"}}}]}"#;
    let dropped = RequestContext::roles_anywhere().with_principal_tags([("x509Subject/CN", "web")]);
    let d = decide(doc, &dropped, &[ASSUME_ROLE]);
    assert!(
        matches!(d.refusal().unwrap().outcome, Outcome::ExplicitDeny { .. }),
        "{d}"
    );
    let ops = dropped.with_principal_tags([("x509Subject/OU", "ops")]);
    assert!(decide(doc, &ops, &[ASSUME_ROLE]).is_allowed());
}

#[test]
fn implicit_deny_without_allow() {
    let doc = r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"sts:AssumeRole",
        "Condition":{"StringEquals":{"aws:PrincipalTag/x509Subject/CN":"blocked"}}}}"#;
    let d = decide(doc, &RequestContext::roles_anywhere(), &[ASSUME_ROLE]);
    assert!(!d.is_allowed());
    assert_eq!(
        d.refusal().unwrap().outcome,
        Outcome::ImplicitDeny { misses: vec![] }
    );
    assert_eq!(
        d.to_string(),
        "denied: sts:AssumeRole implicitly denied: no Allow statement"
    );
}

#[test]
fn every_requested_action_must_be_allowed() {
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Principal":{"Service":"rolesanywhere.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let ctx = RequestContext::roles_anywhere();
    assert!(decide(doc, &ctx, &[ASSUME_ROLE]).is_allowed());
    let d = decide(doc, &ctx, ALL_ACTIONS);
    assert!(!d.is_allowed());
    assert_eq!(d.refusal().unwrap().action, TAG_SESSION);
    assert!(d.to_string().contains("action does not match"), "{d}");
    assert!(
        !decide(doc, &ctx, &[]).is_allowed(),
        "no action requested is not an allow"
    );
}

#[test]
fn action_patterns() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, bool)] = &[
        (r#""sts:*""#, TAG_SESSION, true),
        (r#""*""#, SET_SOURCE_IDENTITY, true),
        (r#""sts:Assume*""#, ASSUME_ROLE, true),
        (r#""sts:Assume*""#, TAG_SESSION, false),
        (r#""sts:?agSession""#, TAG_SESSION, true),
        (r#""STS:ASSUMEROLE""#, ASSUME_ROLE, true),
        (r#"["s3:GetObject","sts:SetSourceIdentity"]"#, SET_SOURCE_IDENTITY, true),
        (r#""sts:AssumeRoleWithSAML""#, ASSUME_ROLE, false),
        (r#""iam:*""#, ASSUME_ROLE, false),
    ];
    for (action, requested, want) in cases {
        let doc = format!(
            r#"{{"Statement":[{{"Effect":"Allow","Principal":{{"Service":"rolesanywhere.amazonaws.com"}},"Action":{action}}}]}}"#
        );
        let d = decide(&doc, &RequestContext::roles_anywhere(), &[requested]);
        assert_eq!(
            d.is_allowed(),
            *want,
            "Action {action} for {requested}: {d}"
        );
    }
    let not_action = r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"rolesanywhere.amazonaws.com"},"NotAction":"sts:TagSession"}]}"#;
    assert!(
        decide(
            not_action,
            &RequestContext::roles_anywhere(),
            &[ASSUME_ROLE]
        )
        .is_allowed()
    );
    assert!(
        !decide(
            not_action,
            &RequestContext::roles_anywhere(),
            &[TAG_SESSION]
        )
        .is_allowed()
    );
}

#[test]
fn principals() {
    #[rustfmt::skip]
    let cases: &[(&str, bool)] = &[
        (r#"{"Service":"rolesanywhere.amazonaws.com"}"#, true),
        (r#"{"Service":["ec2.amazonaws.com","rolesanywhere.amazonaws.com"]}"#, true),
        (r#"{"Service":"ec2.amazonaws.com"}"#, false),
        (r#""*""#, true),
        (r#"{"AWS":"*"}"#, true),
        (r#"{"AWS":"arn:aws:iam::123456789012:root"}"#, false),
        (r#"{"Federated":"cognito-identity.amazonaws.com"}"#, false),
    ];
    for (principal, want) in cases {
        let doc = format!(
            r#"{{"Statement":[{{"Effect":"Allow","Principal":{principal},"Action":"sts:AssumeRole"}}]}}"#
        );
        let d = decide(&doc, &RequestContext::roles_anywhere(), &[ASSUME_ROLE]);
        assert_eq!(d.is_allowed(), *want, "Principal {principal}: {d}");
        if !want {
            assert!(d.to_string().contains("principal does not match"), "{d}");
        }
    }
}

// The trust policies from the seed material, verbatim.
const SEED_LOCAL: &str = r#"{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "",
            "Effect": "Allow",
            "Principal": {
                "Service": "rolesanywhere.amazonaws.com"
            },
            "Action": [
                "sts:AssumeRole",
                "sts:SetSourceIdentity",
                "sts:TagSession"
            ],
            "Condition": {
                "StringEquals": {
                    "aws:PrincipalTag/x509Subject/CN": "local.example.com"
                },
                "ArnEquals": {
                    "aws:SourceArn": "arn:aws:rolesanywhere:ap-southeast-2:{AWS::AccountID}:trust-anchor/c3c2921d-****-????-b9d3-4240bbbb60ad"
                }
            }
        }
    ]
}"#;

/// The trust policy of the seeds' "Create the IAM Role" step, verbatim.
const SEED_BACKUP: &str = include_str!("../../testdata/seeds-trust-policy.json");

#[test]
fn seed_backup_server_policy() {
    let anchor = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/abcd1234-ef56-gh78-ij90-klmnopqrstuv";
    let ok = RequestContext::roles_anywhere()
        .with_source_arn(anchor)
        .with_principal_tags([
            ("x509Subject/CN", "backup-server.corp.example.com"),
            ("x509Subject/O", "Corp"),
        ]);
    let d = decide(SEED_BACKUP, &ok, ALL_ACTIONS);
    assert!(d.is_allowed(), "{d}");
    assert_eq!(
        d.to_string(),
        "allowed: sts:AssumeRole allowed by Statement[0], sts:TagSession allowed by Statement[0], sts:SetSourceIdentity allowed by Statement[0]"
    );

    let other_cn = RequestContext::roles_anywhere()
        .with_source_arn(anchor)
        .with_principal_tags([("x509Subject/CN", "web.corp.example.com")]);
    let d = decide(SEED_BACKUP, &other_cn, ALL_ACTIONS);
    assert!(!d.is_allowed());
    assert!(d.to_string().contains("x509Subject/CN"), "{d}");

    let other_anchor = RequestContext::roles_anywhere()
        .with_source_arn("arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/00000000-0000-0000-0000-000000000000")
        .with_principal_tags([("x509Subject/CN", "backup-server.corp.example.com")]);
    let d = decide(SEED_BACKUP, &other_anchor, ALL_ACTIONS);
    assert!(!d.is_allowed());
    assert!(d.to_string().contains("aws:SourceArn"), "{d}");
}

#[test]
fn seed_local_policy() {
    // Verbatim, the account is the literal text "{AWS::AccountID}" (its "::" splits the ARN
    // parts differently), so no real anchor matches: IAM would store and apply it as written.
    let anchor = "arn:aws:rolesanywhere:ap-southeast-2:123456789012:trust-anchor/c3c2921d-1234-abcd-b9d3-4240bbbb60ad";
    let ctx = RequestContext::roles_anywhere()
        .with_source_arn(anchor)
        .with_principal_tags([("x509Subject/CN", "local.example.com")]);
    let d = decide(SEED_LOCAL, &ctx, ALL_ACTIONS);
    assert!(!d.is_allowed());
    assert!(d.to_string().contains("ArnEquals"), "{d}");

    // With the account filled in, its `****` and `????` are wildcards in ArnEquals.
    let filled = SEED_LOCAL.replace("{AWS::AccountID}", "123456789012");
    assert!(decide(&filled, &ctx, ALL_ACTIONS).is_allowed());
    let three_chars = ctx.clone().with_source_arn(
        "arn:aws:rolesanywhere:ap-southeast-2:123456789012:trust-anchor/c3c2921d-1234-abc-b9d3-4240bbbb60ad",
    );
    assert!(!decide(&filled, &three_chars, ALL_ACTIONS).is_allowed());
    let other_cn = ctx.with_principal_tags([("x509Subject/CN", "other.example.com")]);
    assert!(!decide(&filled, &other_cn, ALL_ACTIONS).is_allowed());
}

// The IAM Roles Anywhere user guide's "Attribute mapping and trust policy" examples.
const DOC_ISSUER_EQUALS: &str = r#"{ "Version":"2012-10-17", "Statement": [ { "Effect": "Allow", "Principal": { "Service": "rolesanywhere.amazonaws.com" }, "Action": [ "sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity" ], "Condition": { "StringEquals": { "aws:PrincipalTag/x509Issuer/CN": "Bob" }, "ArnEquals": { "aws:SourceArn": [ "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/TA_ID" ] } } } ] }"#;

#[test]
fn user_guide_issuer_cn_examples() {
    let anchor = "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/TA_ID";
    let mapped = RequestContext::roles_anywhere()
        .with_source_arn(anchor)
        .with_principal_tags([("x509Issuer/CN", "Bob")]);
    // A profile whose mapping lacks the issuer CN: the tag is absent.
    let unmapped = RequestContext::roles_anywhere().with_source_arn(anchor);
    assert!(decide(DOC_ISSUER_EQUALS, &mapped, ALL_ACTIONS).is_allowed());
    assert!(!decide(DOC_ISSUER_EQUALS, &unmapped, ALL_ACTIONS).is_allowed());
    let not_equals = DOC_ISSUER_EQUALS.replace("\"StringEquals\"", "\"StringNotEquals\"");
    assert!(!decide(&not_equals, &mapped, ALL_ACTIONS).is_allowed());
    assert!(decide(&not_equals, &unmapped, ALL_ACTIONS).is_allowed());
}

#[test]
fn parse_keeps_structure() {
    let p = Policy::parse(SEED_BACKUP).unwrap();
    assert_eq!(p.version, "2012-10-17");
    assert_eq!(p.statements.len(), 1);
    let s = &p.statements[0];
    assert_eq!(s.effect, Effect::Allow);
    assert_eq!(s.sid, None);
    assert_eq!(
        s.principal,
        Principal::Named {
            services: vec![ROLES_ANYWHERE_SERVICE.into()],
            others: 0
        }
    );
    assert_eq!(s.conditions.len(), 2);
    let c = Policy::parse(
        r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Condition":{"ForAllValues:StringNotLikeIfExists":{"aws:TagKeys":["a","b"]}}}}"#,
    )
    .unwrap();
    assert_eq!(c.version, "2008-10-17");
    let c = &c.statements[0].conditions[0];
    assert_eq!(c.comparison, Comparison::StringNotLike);
    assert_eq!(c.qualifier, Some(SetQualifier::ForAllValues));
    assert!(c.if_exists);
    assert_eq!(c.values, vec!["a", "b"]);
}

const OK_STATEMENT: &str = r#""Effect":"Allow","Principal":{"Service":"rolesanywhere.amazonaws.com"},"Action":"sts:AssumeRole""#;

#[test]
fn malformed_documents_are_refused_with_their_cause() {
    let with_condition =
        |c: &str| format!(r#"{{"Statement":[{{{OK_STATEMENT},"Condition":{c}}}]}}"#);
    #[rustfmt::skip]
    let cases: Vec<(String, &str)> = vec![
        ("not json".into(), "policy document is not valid JSON: expected ident at line 1 column 2"),
        ("[]".into(), "policy must be a JSON object"),
        (r#"{"Version":"2012-10-17"}"#.into(), "policy has no Statement"),
        (r#"{"Version":"2012-10-18","Statement":[]}"#.into(), r#"policy Version "2012-10-18" is not supported (use "2012-10-17")"#),
        (r#"{"Statement":[],"Foo":1}"#.into(), r#"policy has unknown field "Foo""#),
        (r#"{"Statement":["x"]}"#.into(), "Statement[0] must be a JSON object"),
        (r#"{"Statement":{"Principal":"*","Action":"sts:AssumeRole"}}"#.into(), r#"Statement[0] has no Effect (use "Allow" or "Deny")"#),
        (r#"{"Statement":{"Effect":"allow","Principal":"*","Action":"sts:AssumeRole"}}"#.into(), r#"Statement[0] has Effect "allow"; expected "Allow" or "Deny""#),
        (format!(r#"{{"Statement":[{{{OK_STATEMENT}}},{{"Effect":"Allow","Action":"sts:AssumeRole"}}]}}"#), "Statement[1] has no Principal (a trust policy statement names who may assume the role)"),
        (r#"{"Statement":{"Effect":"Deny","NotPrincipal":{"Service":"x"},"Action":"sts:AssumeRole"}}"#.into(), "Statement[0] uses NotPrincipal, which trust policies here do not support; name the principal with Principal"),
        (format!(r#"{{"Statement":{{{OK_STATEMENT},"Resource":"*"}}}}"#), "Statement[0] has prohibited field Resource (a trust policy names no resource)"),
        (format!(r#"{{"Statement":{{{OK_STATEMENT},"NotResource":"*"}}}}"#), "Statement[0] has prohibited field NotResource (a trust policy names no resource)"),
        (format!(r#"{{"Statement":{{{OK_STATEMENT},"Principals":"*"}}}}"#), r#"Statement[0] has unknown field "Principals""#),
        (r#"{"Statement":{"Effect":"Allow","Principal":{"Service":[]},"Action":"sts:AssumeRole"}}"#.into(), "Statement[0] has an invalid Principal: Service: an empty array"),
        (r#"{"Statement":{"Effect":"Allow","Principal":{"Services":"x"},"Action":"sts:AssumeRole"}}"#.into(), r#"Statement[0] has an invalid Principal: unknown principal type "Services" (use Service, AWS, Federated or CanonicalUser)"#),
        (r#"{"Statement":{"Effect":"Allow","Principal":"rolesanywhere.amazonaws.com","Action":"sts:AssumeRole"}}"#.into(), r#"Statement[0] has an invalid Principal: "rolesanywhere.amazonaws.com" (expected "*" or an object such as {"Service": "rolesanywhere.amazonaws.com"})"#),
        (r#"{"Statement":{"Effect":"Allow","Principal":"*"}}"#.into(), "Statement[0] has no Action"),
        (r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","NotAction":"sts:TagSession"}}"#.into(), "Statement[0] has both Action and NotAction; use one"),
        (r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"AssumeRole"}}"#.into(), r#"Statement[0] has an invalid action "AssumeRole": actions are "*" or prefixed by a service, e.g. "sts:AssumeRole""#),
        (r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":5}}"#.into(), "Statement[0] has an invalid Action: 5 is not a string or an array of strings"),
        (r#"{"Statement":{"Sid":5,"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}}"#.into(), "Statement[0] has Sid 5, which is not a string"),
        (format!(r#"{{"Statement":[{{"Sid":"A",{OK_STATEMENT}}},{{"Sid":"A",{OK_STATEMENT}}}]}}"#), r#"Statement IDs (SID) in a single policy must be unique: "A" appears twice"#),
        (with_condition(r#"{"StringEqual":{"aws:SourceArn":"x"}}"#), r#"Statement[0] uses unknown condition operator "StringEqual""#),
        (with_condition(r#"{"stringequals":{"aws:SourceArn":"x"}}"#), r#"Statement[0] uses unknown condition operator "stringequals""#),
        (with_condition(r#"{"ForSomeValues:StringEquals":{"aws:SourceArn":"x"}}"#), r#"Statement[0] uses unknown condition operator "ForSomeValues:StringEquals""#),
        (with_condition(r#"{"NullIfExists":{"aws:SourceArn":"true"}}"#), r#"Statement[0] uses unknown condition operator "NullIfExists""#),
        (with_condition(r#"{"ForAnyValue:Null":{"aws:SourceArn":"true"}}"#), r#"Statement[0] uses unknown condition operator "ForAnyValue:Null""#),
        (with_condition(r#"{"NumericLessThan":{"aws:MultiFactorAuthAge":"3600"}}"#), r#"Statement[0] uses condition operator "NumericLessThan", which the emulator does not evaluate (supported: String*, Arn*, Null, with ForAnyValue:/ForAllValues: and IfExists)"#),
        (with_condition(r#"{"BoolIfExists":{"aws:SecureTransport":"true"}}"#), r#"Statement[0] uses condition operator "BoolIfExists", which the emulator does not evaluate (supported: String*, Arn*, Null, with ForAnyValue:/ForAllValues: and IfExists)"#),
        (with_condition(r#"{"Null":{"aws:SourceArn":"yes"}}"#), r#"Statement[0] has an invalid Condition: Null on "aws:SourceArn" takes "true" or "false", not "yes""#),
        (with_condition(r#"{"StringEquals":{"PrincipalTag/x509Subject/CN":"x"}}"#), r#"Statement[0] has an invalid Condition: condition key "PrincipalTag/x509Subject/CN" is not prefixed by a service, e.g. "aws:SourceArn""#),
        (with_condition(r#"{"StringEquals":{"aws:SourceArn":{"a":1}}}"#), r#"Statement[0] has an invalid Condition: "aws:SourceArn": {"a":1} is not a string, number or boolean"#),
        (with_condition(r#"{"StringEquals":{"aws:SourceArn":[]}}"#), r#"Statement[0] has an invalid Condition: "aws:SourceArn": an empty array of values"#),
        (with_condition(r#"{"StringEquals":{"aws:SourceArn":null}}"#), r#"Statement[0] has an invalid Condition: "aws:SourceArn": null is not a string, number or boolean"#),
        (with_condition(r#"{"StringEquals":"aws:SourceArn"}"#), r#"Statement[0] has an invalid Condition: "StringEquals" maps to "aws:SourceArn", not an object of condition keys"#),
        (with_condition(r#"{"StringEquals":{}}"#), r#"Statement[0] has an invalid Condition: "StringEquals" names no condition key"#),
        (with_condition(r#"["StringEquals"]"#), r#"Statement[0] has an invalid Condition: ["StringEquals"] is not an object of operators"#),
        // Text from the document is escaped in the message.
        (with_condition("{\"String\\u001bEquals\":{\"aws:SourceArn\":\"x\"}}"), r#"Statement[0] uses unknown condition operator "String\u{1b}Equals""#),
    ];
    let mut failures = Vec::new();
    for (doc, want) in &cases {
        match Policy::parse(doc) {
            Ok(p) => failures.push(format!("accepted {doc}: {p:?}")),
            Err(e) if e.to_string() != *want => {
                failures.push(format!("{doc}\n  got:  {e}\n  want: {want}"))
            }
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn accepted_variants() {
    // Forms IAM accepts that a stricter parser might refuse.
    #[rustfmt::skip]
    let docs = [
        r#"{"Statement":[]}"#,
        r#"{"Id":"x","Version":"2008-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"*"}}"#,
        r#"{"Statement":[{"Sid":"","Effect":"Allow","Principal":"*","Action":"*"},{"Sid":"","Effect":"Allow","Principal":"*","Action":"*"}]}"#,
        r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:root"],"Service":"rolesanywhere.amazonaws.com"},"Action":["sts:AssumeRole"]}}"#,
    ];
    for doc in docs {
        if let Err(e) = Policy::parse(doc) {
            panic!("refused {doc}: {e}");
        }
    }
}

/// `testdata/policy-cases.json` (at the workspace root): the decisions this engine and the
/// agent's `doctor` (its own, separate engine) must both reach. The file's `about` defines the
/// fields; this reads them into a [`RequestContext`] and compares [`Policy::evaluate`]'s outcome.
#[test]
fn emulator_decides_every_shared_policy_case_as_the_table_says() {
    use serde_json::{Value, json};
    const TABLE: &str = include_str!("../../../testdata/policy-cases.json");
    fn observed(case: &Value) -> Result<Value, String> {
        let doc = serde_json::to_string(&case["policy"]).map_err(|e| e.to_string())?;
        let policy = Policy::parse(&doc).map_err(|e| e.to_string())?;
        let service = case["principal"].as_str().unwrap_or(ROLES_ANYWHERE_SERVICE);
        let mut ctx = RequestContext::for_service(service);
        if let Some(tags) = case["tags"].as_object() {
            ctx = ctx.with_principal_tags(
                tags.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string())),
            );
        }
        if let Some(si) = case["source_identity"].as_str() {
            ctx = ctx.with_key("sts:SourceIdentity", [si]);
        }
        if let Some(arn) = case["source_arn"].as_str() {
            ctx = ctx.with_source_arn(arn);
        }
        if let Some(keys) = case["keys"].as_object() {
            for (k, v) in keys {
                let values: Vec<String> = v
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                ctx = ctx.with_key(k, values);
            }
        }
        let actions: Vec<&str> = case["actions"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let decision = policy.evaluate(&ctx, &actions);
        if decision.is_allowed() {
            return match decision.actions.first().map(|a| &a.outcome) {
                Some(Outcome::Allowed { statement, .. }) => {
                    Ok(json!({"decision": "allow", "statement": statement.index}))
                }
                other => Err(format!("allowed without an allowing statement: {other:?}")),
            };
        }
        let Some(refusal) = decision.refusal() else {
            return Err("refused without a refusal".into());
        };
        Ok(match &refusal.outcome {
            Outcome::ExplicitDeny { statement, .. } => {
                json!({"decision": "deny", "action": refusal.action, "explicit": statement.index})
            }
            Outcome::ImplicitDeny { misses } => {
                let m: Vec<Value> = misses
                    .iter()
                    .map(|miss| {
                        let i = miss.statement.index;
                        match &miss.reason {
                            MissReason::Principal => json!({"statement": i, "reason": "principal"}),
                            MissReason::Action => json!({"statement": i, "reason": "action"}),
                            MissReason::Condition(c) => {
                                json!({"statement": i, "reason": "condition",
                                "operator": c.operator, "key": c.key})
                            }
                        }
                    })
                    .collect();
                json!({"decision": "deny", "action": refusal.action, "misses": m})
            }
            Outcome::Allowed { .. } => return Err("the refusal is an Allow".into()),
        })
    }
    let doc: Value = match serde_json::from_str(TABLE) {
        Ok(d) => d,
        Err(e) => panic!("testdata/policy-cases.json: {e}"),
    };
    let cases = doc["cases"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    assert!(cases.len() >= 30, "the table has {} cases", cases.len());
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            let got = observed(case);
            (got.as_ref().ok() != Some(&case["expect"])).then(|| {
                format!(
                    "{}: expected {}, the emulator decided {got:?}",
                    case["name"], case["expect"]
                )
            })
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
