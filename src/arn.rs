//! ARNs of trust anchors, profiles and roles; regions, partitions and endpoints.
//!
//! STUB: filled by the core work (issue 2). Signatures are the contract other modules code against.

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

/// ARN and region problems.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Placeholder until implemented.
    #[error("not implemented")]
    Todo,
}

/// Parses and validates `text` as an ARN of `kind`.
pub fn parse(text: &str, kind: ArnKind) -> Result<Arn, Error> {
    let _ = (text, kind);
    todo!()
}

/// The CreateSession endpoint base URL (`https://rolesanywhere.REGION.amazonaws.com`, partition-aware,
/// FIPS host when asked). The signing region never changes.
pub fn endpoint_for(region: &str, fips: bool) -> Result<String, Error> {
    let _ = (region, fips);
    todo!()
}
