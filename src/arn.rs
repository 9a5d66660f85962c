//! ARNs of trust anchors, profiles and roles; regions, partitions and endpoints.
//!
//! Owns the syntax checks that let a typo in `--trust-anchor-arn`, `--profile-arn`, `--role-arn` or
//! `--region` fail before any network call, with a message that names the flag and shows the bad part.
//! Pure: no I/O, no lookups; whether the resources exist is the service's business.

/// Which ARN a value is supposed to be (named in errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArnKind {
    /// `arn:PARTITION:rolesanywhere:REGION:ACCOUNT:trust-anchor/ID`
    TrustAnchor,
    /// `arn:PARTITION:rolesanywhere:REGION:ACCOUNT:profile/ID`
    Profile,
    /// `arn:PARTITION:iam::ACCOUNT:role/PATH/NAME`
    Role,
}

impl ArnKind {
    /// The command-line flag that carries this kind of ARN.
    pub fn flag(self) -> &'static str {
        match self {
            ArnKind::TrustAnchor => "--trust-anchor-arn",
            ArnKind::Profile => "--profile-arn",
            ArnKind::Role => "--role-arn",
        }
    }

    /// The shape users should write, for hints.
    pub fn template(self) -> &'static str {
        match self {
            ArnKind::TrustAnchor => "arn:aws:rolesanywhere:REGION:ACCOUNT:trust-anchor/ID",
            ArnKind::Profile => "arn:aws:rolesanywhere:REGION:ACCOUNT:profile/ID",
            ArnKind::Role => "arn:aws:iam::ACCOUNT:role/NAME",
        }
    }

    fn service(self) -> &'static str {
        match self {
            ArnKind::TrustAnchor | ArnKind::Profile => "rolesanywhere",
            ArnKind::Role => "iam",
        }
    }

    fn resource_type(self) -> &'static str {
        match self {
            ArnKind::TrustAnchor => "trust-anchor",
            ArnKind::Profile => "profile",
            ArnKind::Role => "role",
        }
    }
}

/// A validated ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn {
    /// The full text.
    pub text: String,
    /// `aws`, `aws-cn`, `aws-us-gov`.
    pub partition: String,
    /// Region (empty for IAM roles).
    pub region: String,
    /// 12-digit account.
    pub account: String,
}

impl Arn {
    /// The resource part after the account, e.g. `trust-anchor/ID` or `role/path/NAME`.
    pub fn resource(&self) -> &str {
        // `parse` guarantees five colons before the resource; a hand-built value without them has none.
        self.text.splitn(6, ':').nth(5).unwrap_or("")
    }
}

/// What exactly is wrong with an ARN (the offending part is carried for the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArnProblem {
    /// Not `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE` at all.
    #[error("it is not an ARN (expected {expected})")]
    NotAnArn {
        /// The expected shape.
        expected: &'static str,
    },
    /// Partition other than `aws`, `aws-cn`, `aws-us-gov`.
    #[error("unknown partition {0:?} (expected aws, aws-cn or aws-us-gov)")]
    Partition(String),
    /// Wrong service (e.g. an IAM ARN given as a profile).
    #[error("service is {found:?}, expected {expected:?}")]
    Service {
        /// Service found.
        found: String,
        /// Service expected.
        expected: &'static str,
    },
    /// Region missing or malformed.
    #[error("region {0:?} is not a region name like us-east-1")]
    Region(String),
    /// IAM ARNs carry no region.
    #[error("IAM role ARNs have no region, found {0:?} (expected arn:aws:iam::ACCOUNT:role/NAME)")]
    RegionNotEmpty(String),
    /// A region that belongs to another partition.
    #[error("region {region:?} belongs to partition {expected}, not {partition}")]
    RegionPartition {
        /// The region.
        region: String,
        /// The partition written.
        partition: String,
        /// The partition the region belongs to.
        expected: &'static str,
    },
    /// Account not 12 digits.
    #[error("account {0:?} must be 12 digits")]
    Account(String),
    /// Resource of the wrong type (e.g. a profile ARN given as a trust anchor).
    #[error("resource {found:?} is not a {expected}/… resource")]
    ResourceType {
        /// Resource found.
        found: String,
        /// Resource type expected.
        expected: &'static str,
    },
    /// Empty or malformed resource id.
    #[error("resource id {0:?} is empty or contains '/', spaces or control characters")]
    ResourceId(String),
    /// Role name outside IAM's rules.
    #[error("role name {0:?} is invalid (1 to 64 characters of letters, digits and + = , . @ _ -)")]
    RoleName(String),
    /// Role path outside IAM's rules.
    #[error("role path {0:?} is invalid (printable ASCII, at most 512 characters)")]
    RolePath(String),
}

/// `problem` as a message shows it: each problem quotes a part of the ARN, which must not be a part
/// after a `pin-value` in it (see [`crate::text`]).
fn problem_text(text: &str, problem: &ArnProblem) -> String {
    if crate::text::pin_value_at(text).is_some() {
        "it contains pin-value, which no ARN does (details not shown: they may quote the PIN)"
            .into()
    } else {
        problem.to_string()
    }
}

/// ARN and region problems.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An ARN given on the command line or in configuration is malformed.
    #[error(
        "invalid {} {:?}: {}",
        kind.flag(),
        crate::text::redact(text),
        problem_text(text, problem)
    )]
    Invalid {
        /// Which ARN.
        kind: ArnKind,
        /// The text given.
        text: String,
        /// What is wrong with it.
        problem: ArnProblem,
    },
    /// A region (e.g. `--region`) that is not a region name.
    #[error(
        "invalid region {:?}: expected a region name like us-east-1 (never a -fips name)",
        crate::text::redact(.0)
    )]
    Region(String),
    /// Trust anchor and profile live in different regions.
    #[error(
        "trust anchor is in region {trust_anchor} but profile is in region {profile}; \
         use a trust anchor and profile from the same region"
    )]
    RegionMismatch {
        /// The trust anchor's region.
        trust_anchor: String,
        /// The profile's region.
        profile: String,
    },
    /// FIPS endpoints asked for in a partition that has none.
    #[error("there is no FIPS endpoint for region {0}; drop the FIPS option or give --endpoint")]
    NoFipsEndpoint(String),
}

/// A malformed ARN or region is the user's to fix.
impl rolesanywhere_core::Classify for Error {
    fn class(&self) -> rolesanywhere_core::ErrorClass {
        rolesanywhere_core::ErrorClass::Configuration
    }
}

const PARTITIONS: [&str; 3] = ["aws", "aws-cn", "aws-us-gov"];

/// Parses and validates `text` as an ARN of `kind`.
pub fn parse(text: &str, kind: ArnKind) -> Result<Arn, Error> {
    let invalid = |problem| Error::Invalid {
        kind,
        text: text.to_string(),
        problem,
    };
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    let [prefix, partition, service, region, account, resource] = parts[..] else {
        return Err(invalid(ArnProblem::NotAnArn {
            expected: kind.template(),
        }));
    };
    if prefix != "arn" {
        return Err(invalid(ArnProblem::NotAnArn {
            expected: kind.template(),
        }));
    }
    if !PARTITIONS.contains(&partition) {
        return Err(invalid(ArnProblem::Partition(partition.into())));
    }
    if service != kind.service() {
        return Err(invalid(ArnProblem::Service {
            found: service.into(),
            expected: kind.service(),
        }));
    }
    if kind == ArnKind::Role {
        if !region.is_empty() {
            return Err(invalid(ArnProblem::RegionNotEmpty(region.into())));
        }
    } else {
        if !is_region(region) {
            return Err(invalid(ArnProblem::Region(region.into())));
        }
        let expected = partition_of(region);
        if expected != partition {
            return Err(invalid(ArnProblem::RegionPartition {
                region: region.into(),
                partition: partition.into(),
                expected,
            }));
        }
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(ArnProblem::Account(account.into())));
    }
    let Some(id) = resource
        .strip_prefix(kind.resource_type())
        .and_then(|r| r.strip_prefix('/'))
    else {
        return Err(invalid(ArnProblem::ResourceType {
            found: resource.into(),
            expected: kind.resource_type(),
        }));
    };
    if kind == ArnKind::Role {
        check_role(id).map_err(invalid)?;
    } else if id.is_empty()
        || id
            .chars()
            .any(|c| c == '/' || c.is_whitespace() || c.is_control())
    {
        return Err(invalid(ArnProblem::ResourceId(id.into())));
    }
    Ok(Arn {
        text: text.to_string(),
        partition: partition.to_string(),
        region: region.to_string(),
        account: account.to_string(),
    })
}

/// IAM's rules: name `[\w+=,.@-]{1,64}`; path `/` or `/…/` of printable ASCII, at most 512 characters.
fn check_role(path_and_name: &str) -> Result<(), ArnProblem> {
    let (path, name) = match path_and_name.rfind('/') {
        Some(i) => (&path_and_name[..=i], &path_and_name[i + 1..]),
        None => ("", path_and_name),
    };
    let name_ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if !name_ok {
        return Err(ArnProblem::RoleName(name.into()));
    }
    // The ARN omits the leading `/` of the IAM path; count it towards IAM's 512-character limit.
    if path.len() + 1 > 512 || !path.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(ArnProblem::RolePath(path.into()));
    }
    Ok(())
}

/// Region syntax: two lowercase letters, one or more lowercase words, a number (`us-gov-west-1`).
fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let [first, middle @ .., last] = &parts[..] else {
        return false;
    };
    !middle.is_empty()
        && first.len() == 2
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && middle
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && !last.is_empty()
        && last.len() <= 3
        && last.bytes().all(|b| b.is_ascii_digit())
}

fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Checks that `region` is a region name (`us-east-1`), e.g. for `--region`.
pub fn check_region(region: &str) -> Result<(), Error> {
    if is_region(region) {
        Ok(())
    } else {
        Err(Error::Region(region.to_string()))
    }
}

/// Fails with [`Error::RegionMismatch`] unless the trust anchor and the profile share a region (the
/// service would refuse the request).
pub fn check_same_region(trust_anchor: &Arn, profile: &Arn) -> Result<(), Error> {
    if trust_anchor.region == profile.region {
        return Ok(());
    }
    Err(Error::RegionMismatch {
        trust_anchor: trust_anchor.region.clone(),
        profile: profile.region.clone(),
    })
}

/// The CreateSession endpoint base URL (`https://rolesanywhere.REGION.amazonaws.com`, partition-aware,
/// FIPS host when asked). The signing region never changes.
pub fn endpoint_for(region: &str, fips: bool) -> Result<String, Error> {
    check_region(region)?;
    let suffix = match partition_of(region) {
        "aws-cn" => "amazonaws.com.cn",
        _ => "amazonaws.com",
    };
    if fips && suffix != "amazonaws.com" {
        return Err(Error::NoFipsEndpoint(region.to_string()));
    }
    let service = if fips {
        "rolesanywhere-fips"
    } else {
        "rolesanywhere"
    };
    Ok(format!("https://{service}.{region}.{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TA: &str = "arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/a1b2c3d4-e5f6";
    const PROFILE: &str = "arn:aws:rolesanywhere:us-east-1:111122223333:profile/0f1e2d3c";
    const ROLE: &str = "arn:aws:iam::111122223333:role/path/ExampleRole";

    fn problem(text: &str, kind: ArnKind) -> ArnProblem {
        match parse(text, kind) {
            Err(Error::Invalid {
                kind: k,
                text: t,
                problem,
            }) => {
                assert_eq!(k, kind);
                assert_eq!(t, text);
                problem
            }
            other => panic!("{text}: expected an invalid-ARN error, got {other:?}"),
        }
    }

    #[test]
    fn parse_accepts_valid_arns_and_splits_fields() {
        let ta = parse(TA, ArnKind::TrustAnchor).unwrap();
        assert_eq!(
            (
                ta.partition.as_str(),
                ta.region.as_str(),
                ta.account.as_str()
            ),
            ("aws", "us-east-1", "111122223333")
        );
        assert_eq!(ta.resource(), "trust-anchor/a1b2c3d4-e5f6");
        assert_eq!(ta.text, TA);
        let p = parse(PROFILE, ArnKind::Profile).unwrap();
        assert_eq!(p.resource(), "profile/0f1e2d3c");
        let role = parse(ROLE, ArnKind::Role).unwrap();
        assert_eq!(role.region, "");
        assert_eq!(role.resource(), "role/path/ExampleRole");
        parse("arn:aws:iam::111122223333:role/R+=,.@_-9", ArnKind::Role).unwrap();
        parse(
            "arn:aws-cn:rolesanywhere:cn-north-1:111122223333:profile/x",
            ArnKind::Profile,
        )
        .unwrap();
        parse(
            "arn:aws-us-gov:rolesanywhere:us-gov-west-1:111122223333:trust-anchor/x",
            ArnKind::TrustAnchor,
        )
        .unwrap();
    }

    #[test]
    fn parse_rejects_text_that_is_not_an_arn() {
        assert!(matches!(
            problem("", ArnKind::Role),
            ArnProblem::NotAnArn { .. }
        ));
        assert!(matches!(
            problem("a1b2c3d4-e5f6", ArnKind::TrustAnchor),
            ArnProblem::NotAnArn { .. }
        ));
        assert!(matches!(
            problem(
                "urn:aws:rolesanywhere:us-east-1:111122223333:profile/x",
                ArnKind::Profile
            ),
            ArnProblem::NotAnArn { .. }
        ));
    }

    #[test]
    fn parse_rejects_unknown_partition() {
        assert_eq!(
            problem(
                "arn:aws-xx:rolesanywhere:us-east-1:111122223333:profile/x",
                ArnKind::Profile
            ),
            ArnProblem::Partition("aws-xx".into())
        );
    }

    #[test]
    fn parse_rejects_wrong_service_for_kind() {
        assert_eq!(
            problem(ROLE, ArnKind::Profile),
            ArnProblem::Service {
                found: "iam".into(),
                expected: "rolesanywhere"
            }
        );
        assert!(matches!(
            problem(PROFILE, ArnKind::Role),
            ArnProblem::Service { .. }
        ));
    }

    #[test]
    fn parse_rejects_bad_region_syntax() {
        for region in [
            "",
            "us_east_1",
            "US-EAST-1",
            "us-east",
            "us-east-1-fips",
            "useast1",
            "u-east-1",
        ] {
            let text = format!("arn:aws:rolesanywhere:{region}:111122223333:profile/x");
            assert_eq!(
                problem(&text, ArnKind::Profile),
                ArnProblem::Region(region.into()),
                "{region}"
            );
        }
    }

    #[test]
    fn parse_rejects_region_of_other_partition() {
        assert_eq!(
            problem(
                "arn:aws:rolesanywhere:cn-north-1:111122223333:profile/x",
                ArnKind::Profile
            ),
            ArnProblem::RegionPartition {
                region: "cn-north-1".into(),
                partition: "aws".into(),
                expected: "aws-cn"
            }
        );
        assert!(matches!(
            problem(
                "arn:aws-cn:rolesanywhere:us-east-1:111122223333:profile/x",
                ArnKind::Profile
            ),
            ArnProblem::RegionPartition { .. }
        ));
    }

    #[test]
    fn parse_rejects_role_with_region() {
        assert_eq!(
            problem("arn:aws:iam:us-east-1:111122223333:role/R", ArnKind::Role),
            ArnProblem::RegionNotEmpty("us-east-1".into())
        );
    }

    #[test]
    fn parse_rejects_account_not_twelve_digits() {
        for account in ["", "11112222333", "1111222233334", "11112222333a"] {
            let text = format!("arn:aws:iam::{account}:role/R");
            assert_eq!(
                problem(&text, ArnKind::Role),
                ArnProblem::Account(account.into())
            );
        }
    }

    #[test]
    fn parse_rejects_resource_of_other_type() {
        assert_eq!(
            problem(PROFILE, ArnKind::TrustAnchor),
            ArnProblem::ResourceType {
                found: "profile/0f1e2d3c".into(),
                expected: "trust-anchor"
            }
        );
        assert!(matches!(
            problem(
                "arn:aws:rolesanywhere:us-east-1:111122223333:profilex/y",
                ArnKind::Profile
            ),
            ArnProblem::ResourceType { .. }
        ));
    }

    #[test]
    fn parse_rejects_empty_or_malformed_id() {
        for id in ["", "a/b", "a b"] {
            let text = format!("arn:aws:rolesanywhere:us-east-1:111122223333:trust-anchor/{id}");
            assert_eq!(
                problem(&text, ArnKind::TrustAnchor),
                ArnProblem::ResourceId(id.into())
            );
        }
    }

    #[test]
    fn parse_rejects_bad_role_names_and_paths() {
        let long = "R".repeat(65);
        for name in ["", "bad name", "bad*name", "bäd", long.as_str()] {
            let text = format!("arn:aws:iam::111122223333:role/path/{name}");
            assert_eq!(
                problem(&text, ArnKind::Role),
                ArnProblem::RoleName(name.into()),
                "{name}"
            );
        }
        parse(
            &format!("arn:aws:iam::111122223333:role/{}", "R".repeat(64)),
            ArnKind::Role,
        )
        .unwrap();
        assert_eq!(
            problem("arn:aws:iam::111122223333:role/pa th/R", ArnKind::Role),
            ArnProblem::RolePath("pa th/".into())
        );
        let long_path = format!("arn:aws:iam::111122223333:role/{}/R", "p".repeat(511));
        assert!(matches!(
            problem(&long_path, ArnKind::Role),
            ArnProblem::RolePath(_)
        ));
    }

    #[test]
    fn error_message_names_flag_and_bad_part() {
        let err = parse("arn:aws:iam::1234:role/R", ArnKind::Role).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid --role-arn \"arn:aws:iam::1234:role/R\": account \"1234\" must be 12 digits"
        );
        let err = parse("nope", ArnKind::TrustAnchor).unwrap_err().to_string();
        assert!(
            err.starts_with("invalid --trust-anchor-arn \"nope\""),
            "{err}"
        );
    }

    #[test]
    fn check_same_region_reports_both_regions() {
        let ta = parse(TA, ArnKind::TrustAnchor).unwrap();
        let same = parse(PROFILE, ArnKind::Profile).unwrap();
        check_same_region(&ta, &same).unwrap();
        let other = parse(
            "arn:aws:rolesanywhere:eu-west-2:111122223333:profile/x",
            ArnKind::Profile,
        )
        .unwrap();
        let err = check_same_region(&ta, &other).unwrap_err();
        assert!(matches!(
            &err,
            Error::RegionMismatch { trust_anchor, profile }
                if trust_anchor == "us-east-1" && profile == "eu-west-2"
        ));
        let msg = err.to_string();
        assert!(
            msg.contains("us-east-1") && msg.contains("eu-west-2"),
            "{msg}"
        );
    }

    #[test]
    fn endpoint_for_is_partition_aware() {
        assert_eq!(
            endpoint_for("us-east-1", false).unwrap(),
            "https://rolesanywhere.us-east-1.amazonaws.com"
        );
        assert_eq!(
            endpoint_for("cn-northwest-1", false).unwrap(),
            "https://rolesanywhere.cn-northwest-1.amazonaws.com.cn"
        );
        assert_eq!(
            endpoint_for("us-gov-west-1", false).unwrap(),
            "https://rolesanywhere.us-gov-west-1.amazonaws.com"
        );
    }

    #[test]
    fn endpoint_for_fips_uses_fips_host() {
        assert_eq!(
            endpoint_for("us-east-2", true).unwrap(),
            "https://rolesanywhere-fips.us-east-2.amazonaws.com"
        );
        assert!(matches!(
            endpoint_for("cn-north-1", true),
            Err(Error::NoFipsEndpoint(r)) if r == "cn-north-1"
        ));
    }

    #[test]
    fn endpoint_for_rejects_invalid_region() {
        for region in [
            "",
            "us-east-1-fips",
            "evil.com/x",
            "us-east-1.",
            "US-EAST-1",
        ] {
            assert!(
                matches!(endpoint_for(region, false), Err(Error::Region(r)) if r == region),
                "{region}"
            );
        }
    }
}
