//! The IAM query API on the emulator's listener: `POST /` with SigV4 scope service `iam` and a
//! form body `Action=…&Version=2010-05-08`, as botocore's `iam` client and `aws iam` send it with
//! `--endpoint-url`. CreateRole, GetRole, UpdateAssumeRolePolicy, DeleteRole and ListRoles act on
//! the control plane's roles, whose trust policies go into the verifier's snapshot.
//!
//! Requests are signed with the `[admin]` credentials (checked by [`super::sigv4`]); botocore signs
//! IAM with the client's region when given an `endpoint_url` (and IAM itself with `us-east-1`), so
//! the scope may name the configured region or `us-east-1`. Answers are IAM's XML: each role's
//! `AssumeRolePolicyDocument` URL-encoded as IAM returns it (botocore decodes it to a dict), errors
//! as `ErrorResponse` with IAM's codes and statuses (`NoSuchEntity` 404, `EntityAlreadyExists`
//! 409, `MalformedPolicyDocument` 400 with the policy parser's message, `ValidationError` 400,
//! `InvalidInput` 400), so botocore raises the modeled exception classes.
//!
//! The operations on [`State`] are pure; [`Control::handle_iam`] authenticates, commits and logs.

use axum::http::StatusCode;
use axum::response::Response;
use time::OffsetDateTime;

use super::state::{Role, State, Tag};
use super::{Control, Request, sigv4};
use crate::query::{self, Error, Params, error, escape};
use crate::server::bounded_text;

/// The IAM API version botocore sends.
pub const VERSION: &str = "2010-05-08";
/// The namespace of IAM's XML answers.
pub const NAMESPACE: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
/// The region IAM (a global service) is signed for when no endpoint is given.
pub const SIGNING_REGION: &str = "us-east-1";
/// IAM's default and largest `MaxItems`.
const DEFAULT_MAX_ITEMS: usize = 100;
const MAX_MAX_ITEMS: usize = 1000;
/// IAM's limits on one role's tags and a policy document's length (the model's).
const MAX_TAGS: usize = 50;
const MAX_POLICY_CHARS: usize = 131_072;

/// The parts of an IAM role ARN `arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn<'a> {
    /// `aws`, `aws-cn`, ….
    pub partition: &'a str,
    /// 12 digits.
    pub account: &'a str,
    /// `/` or `/…/`.
    pub path: &'a str,
    /// The role's name.
    pub name: &'a str,
}

impl<'a> RoleArn<'a> {
    /// Splits a role ARN; the error says which part is wrong.
    pub fn parse(arn: &'a str) -> Result<RoleArn<'a>, String> {
        let fields: Vec<&str> = arn.splitn(6, ':').collect();
        let ["arn", partition, "iam", "", account, resource] = fields[..] else {
            return Err("is not an IAM ARN (arn:aws:iam::ACCOUNT:role/NAME)".into());
        };
        if partition.is_empty() {
            return Err("has no partition (arn:aws:iam::ACCOUNT:role/NAME)".into());
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("account {account:?} is not 12 digits"));
        }
        let Some(rest) = resource.strip_prefix("role/") else {
            return Err("is not a role ARN (its resource must start with role/)".into());
        };
        let cut = rest.rfind('/').map_or(0, |i| i + 1);
        let (path, name) = (&resource[4..5 + cut], &rest[cut..]);
        check_name(name).map_err(|c| format!("role name {name:?} {c}"))?;
        check_path(path).map_err(|c| format!("path {path:?} {c}"))?;
        Ok(RoleArn {
            partition,
            account,
            path,
            name,
        })
    }
}

/// A role name: 1 to 64 of `[\w+=,.@-]` (IAM's pattern; `\w` is ASCII).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err("must be 1 to 64 characters of [\\w+=,.@-]".into())
    }
}

/// A path: `/` or `/…/` of printable ASCII, at most 512 characters.
pub fn check_path(path: &str) -> Result<(), String> {
    let ok = path.len() <= 512
        && path.starts_with('/')
        && path.ends_with('/')
        && path.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(
            "must be \"/\" or start and end with \"/\", at most 512 printable ASCII characters"
                .into(),
        )
    }
}

/// IAM's wording for a parameter that breaks its constraint.
fn invalid(field: &str, value: &str, constraint: &str) -> Error {
    error(
        400,
        "ValidationError",
        format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: Member {constraint}"
        ),
    )
}

fn required<'p>(p: &'p Params, name: &str) -> Result<&'p str, Error> {
    p.get(name).ok_or_else(|| {
        let mut field = name.to_string();
        if let Some(first) = field.get_mut(..1) {
            first.make_ascii_lowercase();
        }
        error(
            400,
            "ValidationError",
            format!(
                "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
            ),
        )
    })
}

fn role_name(p: &Params) -> Result<&str, Error> {
    let name = required(p, "RoleName")?;
    check_name(name).map_err(|c| invalid("roleName", name, &c))?;
    Ok(name)
}

/// A trust policy document: IAM's length and character limits, then the policy parser, whose
/// message `MalformedPolicyDocument` carries.
fn policy_document(p: &Params, name: &str) -> Result<String, Error> {
    let doc = required(p, name)?;
    let field = match name {
        "PolicyDocument" => "policyDocument",
        _ => "assumeRolePolicyDocument",
    };
    let chars = doc.chars().count();
    if !(1..=MAX_POLICY_CHARS).contains(&chars) {
        return Err(invalid(
            field,
            &format!("({chars} characters)"),
            &format!("must have length between 1 and {MAX_POLICY_CHARS}"),
        ));
    }
    if !doc
        .chars()
        .all(|c| matches!(c, '\t' | '\n' | '\r' | ' '..='\u{ff}'))
    {
        return Err(invalid(
            field,
            "(the document)",
            "must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+",
        ));
    }
    crate::policy::Policy::parse(doc)
        .map_err(|e| error(400, "MalformedPolicyDocument", e.to_string()))?;
    Ok(doc.to_string())
}

/// `Tags.member.N.Key` / `.Value`: at most 50, keys 1–128 and values 0–256 characters of
/// `[\p{L}\p{Z}\p{N}_.:/=+\-@]`, keys unique ignoring case.
fn tags(p: &Params) -> Result<Vec<Tag>, Error> {
    let members = p.members("Tags")?;
    if members.len() > MAX_TAGS {
        return Err(error(
            400,
            "LimitExceeded",
            format!("{} tags; a role takes at most {MAX_TAGS}", members.len()),
        ));
    }
    let allowed = crate::mapping::is_tag_text;
    let mut out: Vec<Tag> = Vec::with_capacity(members.len());
    for (i, fields) in members.iter().enumerate() {
        let get = |f: &str| fields.iter().find(|(k, _)| k == f).map(|(_, v)| v.as_str());
        let at = |f: &str| format!("tags.{}.member.{f}", i + 1);
        let key = get("Key").ok_or_else(|| invalid(&at("key"), "null", "must not be null"))?;
        let value =
            get("Value").ok_or_else(|| invalid(&at("value"), "null", "must not be null"))?;
        if !(1..=128).contains(&key.chars().count()) || !allowed(key) {
            return Err(invalid(
                &at("key"),
                key,
                "must be 1 to 128 characters of [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]",
            ));
        }
        if value.chars().count() > 256 || !allowed(value) {
            return Err(invalid(
                &at("value"),
                value,
                "must be 0 to 256 characters of [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]",
            ));
        }
        if out.iter().any(|t| t.key.eq_ignore_ascii_case(key)) {
            return Err(error(
                400,
                "InvalidInput",
                format!("Duplicate tag keys found: {key}. Tag keys are case-insensitive."),
            ));
        }
        out.push(Tag {
            key: key.into(),
            value: value.into(),
        });
    }
    Ok(out)
}

fn no_such_role(name: &str) -> Error {
    error(
        404,
        "NoSuchEntity",
        format!("The role with name {name} cannot be found."),
    )
}

/// The role named `name`; IAM role names do not distinguish case.
fn position(s: &State, name: &str) -> Result<usize, Error> {
    s.roles
        .iter()
        .position(|r| r.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| no_such_role(name))
}

/// `Role` as IAM writes it; ListRoles leaves out the tags, as IAM does.
fn role_xml(r: &Role, with_tags: bool) -> String {
    let mut x = format!(
        "<Path>{}</Path><RoleName>{}</RoleName><RoleId>{}</RoleId><Arn>{}</Arn><CreateDate>{}</CreateDate>",
        escape(&r.path),
        escape(&r.name),
        crate::sts::role_id(&r.arn),
        escape(&r.arn),
        escape(&r.created_at)
    );
    if let Some(doc) = &r.trust_policy {
        // IAM returns policy documents URL-encoded; botocore decodes them back to a dict.
        x.push_str(&format!(
            "<AssumeRolePolicyDocument>{}</AssumeRolePolicyDocument>",
            crate::verifier::uri_encode(doc.as_bytes())
        ));
    }
    if let Some(d) = &r.description {
        x.push_str(&format!("<Description>{}</Description>", escape(d)));
    }
    x.push_str(&format!(
        "<MaxSessionDuration>{}</MaxSessionDuration>",
        r.max_session_duration
    ));
    if with_tags && !r.tags.is_empty() {
        x.push_str("<Tags>");
        for t in &r.tags {
            x.push_str(&format!(
                "<member><Key>{}</Key><Value>{}</Value></member>",
                escape(&t.key),
                escape(&t.value)
            ));
        }
        x.push_str("</Tags>");
    }
    x
}

/// What an operation answers inside `<ActionResult>` (none: `ResponseMetadata` alone).
type Outcome = Result<Option<String>, Error>;

/// CreateRole: RoleName, AssumeRolePolicyDocument, Path, Description, MaxSessionDuration, Tags.
fn create_role(s: &mut State, account: &str, now: &str, p: &Params) -> Outcome {
    let name = role_name(p)?;
    let path = p.get("Path").unwrap_or("/");
    check_path(path).map_err(|c| invalid("path", path, &c))?;
    let document = policy_document(p, "AssumeRolePolicyDocument")?;
    let description = p.get("Description");
    if let Some(d) = description {
        let ok = d.chars().count() <= 1000
            && d.chars()
                .all(|c| matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{a1}'..='\u{ff}'));
        if !ok {
            return Err(invalid(
                "description",
                d,
                "must be at most 1000 characters of [\\u0009\\u000A\\u000D\\u0020-\\u007E\\u00A1-\\u00FF]",
            ));
        }
    }
    let max_session_duration = match p.get("MaxSessionDuration") {
        None => crate::config::DEFAULT_ROLE_MAX_SESSION,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (3600..=43200).contains(&n) => n,
            _ => {
                return Err(invalid(
                    "maxSessionDuration",
                    v,
                    "must be a number from 3600 to 43200",
                ));
            }
        },
    };
    if p.get("PermissionsBoundary").is_some() {
        return Err(error(
            400,
            "InvalidInput",
            "PermissionsBoundary is not supported by this emulator; create the role without it",
        ));
    }
    let tags = tags(p)?;
    if let Some(existing) = s.roles.iter().find(|r| r.name.eq_ignore_ascii_case(name)) {
        return Err(error(
            409,
            "EntityAlreadyExists",
            format!("Role with name {} already exists.", existing.name),
        ));
    }
    let role = Role {
        arn: format!("arn:aws:iam::{account}:role{path}{name}"),
        path: path.to_string(),
        name: name.to_string(),
        trust_policy: Some(document),
        description: description.map(str::to_string),
        max_session_duration,
        created_at: now.to_string(),
        tags,
    };
    let out = format!("<Role>{}</Role>", role_xml(&role, true));
    s.roles.push(role);
    Ok(Some(out))
}

fn get_role(s: &State, p: &Params) -> Outcome {
    let i = position(s, role_name(p)?)?;
    Ok(Some(format!(
        "<Role>{}</Role>",
        role_xml(&s.roles[i], true)
    )))
}

fn update_assume_role_policy(s: &mut State, p: &Params) -> Outcome {
    let i = position(s, role_name(p)?)?;
    let document = policy_document(p, "PolicyDocument")?;
    s.roles[i].trust_policy = Some(document);
    Ok(None)
}

fn delete_role(s: &mut State, p: &Params) -> Outcome {
    let i = position(s, role_name(p)?)?;
    s.roles.remove(i);
    Ok(None)
}

/// ListRoles: the roles whose path starts with `PathPrefix`, `MaxItems` at a time from `Marker`
/// (the offset of the next page), in creation order.
fn list_roles(s: &State, p: &Params) -> Outcome {
    let prefix = p.get("PathPrefix").unwrap_or("/");
    if !(1..=512).contains(&prefix.len())
        || !prefix.starts_with('/')
        || !prefix.bytes().all(|b| (0x21..=0x7e).contains(&b))
    {
        return Err(invalid(
            "pathPrefix",
            prefix,
            "must start with \"/\" and be at most 512 printable ASCII characters",
        ));
    }
    let max_items = match p.get("MaxItems") {
        None => DEFAULT_MAX_ITEMS,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_MAX_ITEMS).contains(&n) => n,
            _ => {
                return Err(invalid(
                    "maxItems",
                    v,
                    &format!("must be a number from 1 to {MAX_MAX_ITEMS}"),
                ));
            }
        },
    };
    let roles: Vec<&Role> = s
        .roles
        .iter()
        .filter(|r| r.path.starts_with(prefix))
        .collect();
    let start = match p.get("Marker") {
        None => 0,
        Some(m) => match m.parse::<usize>() {
            Ok(n) if n <= roles.len() => n,
            _ => {
                return Err(error(
                    400,
                    "ValidationError",
                    format!(
                        "Marker '{m}' is not a marker this listing returned; start again without it"
                    ),
                ));
            }
        },
    };
    let end = start.saturating_add(max_items).min(roles.len());
    let truncated = end < roles.len();
    let mut x = format!("<IsTruncated>{truncated}</IsTruncated>");
    if truncated {
        x.push_str(&format!("<Marker>{end}</Marker>"));
    }
    x.push_str("<Roles>");
    for r in &roles[start..end] {
        x.push_str(&format!("<member>{}</member>", role_xml(r, false)));
    }
    x.push_str("</Roles>");
    Ok(Some(x))
}

/// `<ActionResponse>` with its result (when the action has one) and request id.
fn response_xml(action: &str, result: Option<&str>, request_id: &str) -> String {
    let result = result
        .map(|r| format!("\n  <{action}Result>{r}</{action}Result>"))
        .unwrap_or_default();
    format!(
        "<{action}Response xmlns=\"{NAMESPACE}\">{result}\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n",
        escape(request_id)
    )
}

/// Whether a request without a SigV4 scope is meant for IAM: its form body names IAM's version
/// (so an unsigned IAM call is refused as IAM would, not as an unknown path).
pub fn is_iam_form(body: &[u8]) -> bool {
    query::form(body).is_ok_and(|p| p.get("Version") == Some(VERSION))
}

impl Control {
    /// Authenticates and answers one IAM query-API request; logs one line (no secrets).
    pub fn handle_iam(&self, req: &Request<'_>, now: OffsetDateTime) -> Response {
        let request_id = query::new_request_id();
        let result = self.iam(req, now);
        let access_key_id = req
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .and_then(|(_, v)| v.split("Credential=").nth(1))
            .and_then(|c| c.split('/').next());
        let (status, code, message) = match &result {
            Ok(_) => (200, None, None),
            Err((_, e)) => (e.status, Some(e.code), Some(bounded_text(&e.message))),
        };
        let action = match &result {
            Ok((a, _)) | Err((Some(a), _)) => Some(bounded_text(a)),
            Err((None, _)) => None,
        };
        query::log(&serde_json::json!({
            "ts": super::timestamp(now),
            "event": "iam",
            "action": action,
            "status": status,
            "error_type": code,
            "message": message,
            "access_key_id": access_key_id.map(bounded_text),
            "request_id": request_id,
        }));
        match result {
            Ok((action, body)) => query::xml(
                StatusCode::OK,
                &request_id,
                response_xml(&action, body.as_deref(), &request_id),
            ),
            Err((_, e)) => query::error_response(NAMESPACE, &e, &request_id),
        }
    }

    /// The action and its result, or the error (with the action when it was read).
    #[allow(clippy::type_complexity)]
    fn iam(
        &self,
        req: &Request<'_>,
        now: OffsetDateTime,
    ) -> Result<(String, Option<String>), (Option<String>, Error)> {
        let regions = [self.base.region.as_str(), SIGNING_REGION];
        sigv4::verify_for(req, self.admin.as_ref(), &regions, "iam", now)
            .map_err(|e| (None, error(e.status(), e.query_code(), e.to_string())))?;
        let p = query::form(req.body).map_err(|e| (None, e))?;
        let action = p
            .get("Action")
            .ok_or_else(|| (None, error(400, "MissingAction", "Missing Action")))?
            .to_string();
        let fail = |e: Error| (Some(action.clone()), e);
        let version = p.get("Version").unwrap_or(VERSION);
        if version != VERSION {
            return Err(fail(error(
                400,
                "InvalidAction",
                format!("Could not find operation {action} for version {version}"),
            )));
        }
        let now = super::timestamp(now);
        let account = self.base.account_id.as_str();
        let outcome = match action.as_str() {
            "CreateRole" => self.commit(|s| create_role(s, account, &now, &p), internal),
            "GetRole" => self.read(|s| get_role(s, &p)),
            "UpdateAssumeRolePolicy" => self.commit(|s| update_assume_role_policy(s, &p), internal),
            "DeleteRole" => self.commit(|s| delete_role(s, &p), internal),
            "ListRoles" => self.read(|s| list_roles(s, &p)),
            _ => Err(error(
                400,
                "InvalidAction",
                format!(
                    "Could not find operation {action} for version {version} (the emulator answers CreateRole, GetRole, UpdateAssumeRolePolicy, DeleteRole and ListRoles)"
                ),
            )),
        };
        outcome.map(|r| (action.clone(), r)).map_err(fail)
    }
}

fn internal(message: String) -> Error {
    error(500, "ServiceFailure", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(body: &str) -> Params {
        query::form(body.as_bytes()).expect("form")
    }

    const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"rolesanywhere.amazonaws.com"},"Action":["sts:AssumeRole","sts:TagSession"]}]}"#;

    fn create(s: &mut State, extra: &str) -> Outcome {
        let body = format!(
            "RoleName=Backup&AssumeRolePolicyDocument={}{extra}",
            crate::verifier::uri_encode(TRUST.as_bytes())
        );
        create_role(s, "123456789012", "2026-03-01T00:00:00Z", &params(&body))
    }

    #[test]
    fn role_arns_split_into_path_and_name() {
        let a = RoleArn::parse("arn:aws:iam::123456789012:role/test/EmulatorRole").expect("arn");
        assert_eq!(
            (a.partition, a.account, a.path, a.name),
            ("aws", "123456789012", "/test/", "EmulatorRole")
        );
        let a = RoleArn::parse("arn:aws-cn:iam::123456789012:role/a/b/c").expect("arn");
        assert_eq!((a.path, a.name), ("/a/b/", "c"));
        let a = RoleArn::parse("arn:aws:iam::123456789012:role/demo").expect("arn");
        assert_eq!((a.path, a.name), ("/", "demo"));
        for (bad, why) in [
            ("arn:aws:sts::123456789012:role/x", "not an IAM ARN"),
            ("arn:aws:iam::12345:role/x", "12 digits"),
            ("arn:aws:iam::123456789012:user/x", "role/"),
            ("arn:aws:iam::123456789012:role/", "role name"),
            ("arn:aws:iam::123456789012:role/a b", "role name"),
            ("arn:aws:iam::123456789012:role/p ath/x", "path"),
            ("not-an-arn", "not an IAM ARN"),
        ] {
            let e = RoleArn::parse(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn names_and_paths_follow_iams_patterns() {
        for good in ["a", "Role_1+=,.@-", &"x".repeat(64)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "a/b", "é", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        for good in ["/", "/a/", "/a/b-c/"] {
            assert!(check_path(good).is_ok(), "{good}");
        }
        for bad in ["", "a/", "/a", "/a b/", &format!("/{}/", "x".repeat(511))] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn create_role_validates_then_stores_and_refuses_a_second_of_the_same_name() {
        let mut s = State::default();
        let out = create(
            &mut s,
            "&Path=%2Fops%2F&Description=d&MaxSessionDuration=7200&Tags.member.1.Key=team&Tags.member.1.Value=ops",
        )
        .expect("created")
        .expect("result");
        let r = &s.roles[0];
        assert_eq!(r.arn, "arn:aws:iam::123456789012:role/ops/Backup");
        assert_eq!((r.path.as_str(), r.max_session_duration), ("/ops/", 7200));
        assert_eq!(r.trust_policy.as_deref(), Some(TRUST));
        assert_eq!(
            r.tags,
            vec![Tag {
                key: "team".into(),
                value: "ops".into()
            }]
        );
        let id = crate::sts::role_id(&r.arn);
        assert!(out.contains(&format!("<RoleId>{id}</RoleId>")), "{out}");
        assert!(
            out.contains("<AssumeRolePolicyDocument>%7B%22Version%22%3A"),
            "{out}"
        );
        assert!(out.contains("<Tags><member><Key>team</Key><Value>ops</Value></member></Tags>"));
        // Names do not distinguish case.
        let body = format!(
            "RoleName=BACKUP&AssumeRolePolicyDocument={}",
            crate::verifier::uri_encode(TRUST.as_bytes())
        );
        let e = create_role(&mut s, "123456789012", "t", &params(&body)).unwrap_err();
        assert_eq!((e.status, e.code), (409, "EntityAlreadyExists"));
        assert!(e.message.contains("Backup"), "{}", e.message);
        assert_eq!(s.roles.len(), 1);
    }

    #[test]
    fn create_role_refusals_carry_iams_codes() {
        let cases = [
            (
                "RoleName=a%20b&AssumeRolePolicyDocument=%7B%7D",
                "ValidationError",
                "roleName",
            ),
            (
                "AssumeRolePolicyDocument=%7B%7D",
                "ValidationError",
                "roleName",
            ),
            ("RoleName=x", "ValidationError", "assumeRolePolicyDocument"),
            (
                "RoleName=x&AssumeRolePolicyDocument=%7Bnot",
                "MalformedPolicyDocument",
                "not valid JSON",
            ),
            (
                "RoleName=x&AssumeRolePolicyDocument=%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D",
                "MalformedPolicyDocument",
                "Statement[0] has no Principal",
            ),
        ];
        for (body, code, text) in cases {
            let e =
                create_role(&mut State::default(), "123456789012", "t", &params(body)).unwrap_err();
            assert_eq!((e.status, e.code), (400, code), "{body}: {}", e.message);
            assert!(e.message.contains(text), "{body}: {}", e.message);
        }
        let mut s = State::default();
        for (extra, code, text) in [
            ("&Path=ops", "ValidationError", "path"),
            (
                "&MaxSessionDuration=60",
                "ValidationError",
                "maxSessionDuration",
            ),
            (
                "&MaxSessionDuration=x",
                "ValidationError",
                "maxSessionDuration",
            ),
            ("&Description=%01", "ValidationError", "description"),
            (
                "&Tags.member.1.Key=a",
                "ValidationError",
                "tags.1.member.value",
            ),
            (
                "&Tags.member.1.Key=a%28&Tags.member.1.Value=v",
                "ValidationError",
                "tags.1.member.key",
            ),
            (
                "&Tags.member.1.Key=a&Tags.member.1.Value=v&Tags.member.2.Key=A&Tags.member.2.Value=w",
                "InvalidInput",
                "Duplicate tag keys",
            ),
            (
                "&PermissionsBoundary=arn%3Aaws%3Aiam%3A%3Aaws%3Apolicy%2Fx",
                "InvalidInput",
                "not supported",
            ),
        ] {
            let e = create(&mut s, extra).unwrap_err();
            assert_eq!((e.status, e.code), (400, code), "{extra}: {}", e.message);
            assert!(e.message.contains(text), "{extra}: {}", e.message);
        }
        assert!(s.roles.is_empty());
    }

    #[test]
    fn get_update_delete_find_roles_by_name_ignoring_case() {
        let mut s = State::default();
        create(&mut s, "").expect("created");
        let got = get_role(&s, &params("RoleName=backup"))
            .expect("get")
            .expect("xml");
        assert!(
            got.contains("<RoleName>Backup</RoleName><RoleId>AROA"),
            "{got}"
        );
        assert!(
            got.contains("<MaxSessionDuration>3600</MaxSessionDuration>"),
            "{got}"
        );
        let e = update_assume_role_policy(&mut s, &params("RoleName=Backup&PolicyDocument=%5B%5D"))
            .unwrap_err();
        assert_eq!(e.code, "MalformedPolicyDocument");
        let deny = TRUST.replace("Allow", "Deny");
        let body = format!(
            "RoleName=Backup&PolicyDocument={}",
            crate::verifier::uri_encode(deny.as_bytes())
        );
        assert_eq!(update_assume_role_policy(&mut s, &params(&body)), Ok(None));
        assert_eq!(s.roles[0].trust_policy.as_deref(), Some(deny.as_str()));
        assert_eq!(delete_role(&mut s, &params("RoleName=BackUp")), Ok(None));
        for e in [
            get_role(&s, &params("RoleName=Backup")).unwrap_err(),
            delete_role(&mut s, &params("RoleName=Backup")).unwrap_err(),
            update_assume_role_policy(&mut s, &params(&body)).unwrap_err(),
        ] {
            assert_eq!((e.status, e.code), (404, "NoSuchEntity"));
            assert_eq!(e.message, "The role with name Backup cannot be found.");
        }
    }

    #[test]
    fn list_roles_pages_with_markers_and_filters_by_path() {
        let mut s = State::default();
        for (name, path) in [("a", "/"), ("b", "/x/"), ("c", "/x/y/"), ("d", "/")] {
            let body = format!(
                "RoleName={name}&Path={}&AssumeRolePolicyDocument={}&Tags.member.1.Key=k&Tags.member.1.Value=v",
                crate::verifier::uri_encode(path.as_bytes()),
                crate::verifier::uri_encode(TRUST.as_bytes())
            );
            create_role(&mut s, "123456789012", "t", &params(&body)).expect("created");
        }
        let names = |x: &str| -> Vec<String> {
            x.split("<RoleName>")
                .skip(1)
                .filter_map(|p| p.split('<').next())
                .map(str::to_string)
                .collect()
        };
        let first = list_roles(&s, &params("MaxItems=3"))
            .expect("list")
            .expect("xml");
        assert_eq!(names(&first), ["a", "b", "c"]);
        assert!(
            first.starts_with("<IsTruncated>true</IsTruncated><Marker>3</Marker>"),
            "{first}"
        );
        assert!(
            !first.contains("<Tags>"),
            "ListRoles leaves tags out: {first}"
        );
        let rest = list_roles(&s, &params("MaxItems=3&Marker=3"))
            .expect("list")
            .expect("xml");
        assert_eq!(names(&rest), ["d"]);
        assert!(
            rest.starts_with("<IsTruncated>false</IsTruncated><Roles>"),
            "{rest}"
        );
        let x = list_roles(&s, &params("PathPrefix=%2Fx%2F"))
            .expect("list")
            .expect("xml");
        assert_eq!(names(&x), ["b", "c"]);
        for bad in [
            "MaxItems=0",
            "MaxItems=1001",
            "Marker=9",
            "Marker=x",
            "PathPrefix=x",
        ] {
            let e = list_roles(&s, &params(bad)).unwrap_err();
            assert_eq!((e.status, e.code), (400, "ValidationError"), "{bad}");
        }
    }

    #[test]
    fn responses_wrap_results_in_iams_envelope() {
        let x = response_xml("GetRole", Some("<Role/>"), "rid");
        assert!(
            x.starts_with(&format!("<GetRoleResponse xmlns=\"{NAMESPACE}\">")),
            "{x}"
        );
        assert!(x.contains("<GetRoleResult><Role/></GetRoleResult>"), "{x}");
        assert!(x.contains("<RequestId>rid</RequestId>"), "{x}");
        let x = response_xml("DeleteRole", None, "rid");
        assert!(!x.contains("Result"), "{x}");
        assert!(is_iam_form(b"Action=ListRoles&Version=2010-05-08"));
        assert!(!is_iam_form(b"Action=GetCallerIdentity&Version=2011-06-15"));
        assert!(!is_iam_form(b"{\"durationSeconds\":3600}"));
    }
}
