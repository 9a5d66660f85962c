//! The command line of `rolesanywhere-emulator`: clap structures only (the raw layer).
//!
//! In the library rather than in `main.rs` so that the workspace's `xtask` can generate the man page
//! and shell completions from the same definitions the binary parses with. No behaviour here.

use crate::ca::KeyType;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Top level.
#[derive(Parser)]
#[command(
    name = "rolesanywhere-emulator",
    version,
    about = "A local IAM Roles Anywhere CreateSession endpoint and test CA"
)]
pub struct Cli {
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Commands.
#[derive(Subcommand)]
pub enum Command {
    /// Serve CreateSession on loopback; prints `listening on URL` first.
    Serve(ServeArgs),
    /// Test CA operations.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Create a CA, a client certificate and a ready config in DIR; print the three ARNs.
    Init(InitArgs),
}

/// `serve` flags.
#[derive(Args)]
pub struct ServeArgs {
    /// Configuration file (TOML).
    #[arg(long)]
    pub config: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key", "tls_ca_out"])]
    pub http: bool,
    /// TLS certificate chain (PEM); default: a fresh certificate from a throwaway CA.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Where to write the throwaway TLS CA (use it as AWS_CA_BUNDLE).
    #[arg(long, conflicts_with = "tls_cert")]
    pub tls_ca_out: Option<PathBuf>,
    /// Issued credentials expire this many seconds after issue (1..43200), whatever duration was
    /// granted; overrides `[server] credential_seconds`. For testing refresh.
    #[arg(long, value_name = "N")]
    pub credential_seconds: Option<u64>,
    /// CreateSession requests per second per (certificate, source address) before 429
    /// ThrottlingException (1..1000000; default 10, as the service); overrides `[throttle]
    /// create_session_per_second` and turns throttling on.
    #[arg(long, value_name = "N", conflicts_with = "no_throttle")]
    pub throttle_per_second: Option<u64>,
    /// CreateSession requests per second for all clients together (1..1000000); overrides
    /// `[throttle] total_per_second` and turns throttling on.
    #[arg(long, value_name = "N", conflicts_with = "no_throttle")]
    pub throttle_total_per_second: Option<u64>,
    /// Do not throttle CreateSession at all (overrides `[throttle] enabled`).
    #[arg(long)]
    pub no_throttle: bool,
}

/// `ca` subcommands.
#[derive(Subcommand)]
pub enum CaCommand {
    /// Create a root CA in DIR (ca.pem, ca.key).
    Init {
        /// CA directory.
        #[arg(long)]
        dir: PathBuf,
        /// ec-p256, ec-p384, rsa-2048, rsa-3072 or rsa-4096 (the CA signs with ECDSA or RSA).
        #[arg(long, default_value = "ec-p256")]
        key_type: KeyType,
        /// The CA's common name.
        #[arg(long, default_value = "rolesanywhere-emulator test CA")]
        cn: String,
    },
    /// Create an intermediate CA in OUT_DIR signed by the CA in DIR.
    Intermediate {
        /// Issuing CA directory.
        #[arg(long)]
        dir: PathBuf,
        /// New intermediate CA directory.
        #[arg(long)]
        out_dir: PathBuf,
        /// The intermediate's common name.
        #[arg(long, default_value = "rolesanywhere-emulator intermediate CA")]
        cn: String,
    },
    /// Issue a certificate.
    Issue(Box<IssueArgs>),
    /// Revoke a certificate; rewrites DIR/crl.pem.
    Revoke {
        /// CA directory.
        #[arg(long)]
        dir: PathBuf,
        /// The certificate to revoke (PEM).
        #[arg(long)]
        certificate: PathBuf,
    },
}

/// `ca issue` flags.
#[derive(Args)]
#[command(group(clap::ArgGroup::new("key").required(true).args(["csr", "public_key", "new_key"])))]
pub struct IssueArgs {
    /// CA directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// Certify the key of this PKCS#10 request (its signature is checked).
    #[arg(long)]
    pub csr: Option<PathBuf>,
    /// Certify this public key (PEM SubjectPublicKeyInfo: EC, RSA or ML-DSA).
    #[arg(long)]
    pub public_key: Option<PathBuf>,
    /// Generate a key of this type: ec-p256, ec-p384, ec-p521, rsa-2048, rsa-3072, rsa-4096,
    /// ml-dsa-44, ml-dsa-65 or ml-dsa-87.
    #[arg(long, requires = "key_out")]
    pub new_key: Option<KeyType>,
    /// Where to write the new key (PKCS#8 PEM, mode 0600).
    #[arg(long, requires = "new_key")]
    pub key_out: Option<PathBuf>,
    /// Subject, e.g. "CN=host,O=Example".
    #[arg(long)]
    pub subject: String,
    /// Subject alternative name (dns:, uri:, ip:, email:); repeatable.
    #[arg(long)]
    pub san: Vec<String>,
    /// Validity in days from one hour ago (default without --days/--not-after: 30 days).
    #[arg(long, conflicts_with_all = ["not_before", "not_after"])]
    pub days: Option<u32>,
    /// Start of validity (RFC 3339).
    #[arg(long, requires = "not_after")]
    pub not_before: Option<String>,
    /// End of validity (RFC 3339).
    #[arg(long, requires = "not_before")]
    pub not_after: Option<String>,
    /// Leave digitalSignature out of keyUsage.
    #[arg(long)]
    pub no_digital_signature: bool,
    /// Issue a CA certificate.
    #[arg(long)]
    pub ca: bool,
    /// Where to write the certificate (PEM).
    #[arg(long)]
    pub out: PathBuf,
}

/// `init` flags.
#[derive(Args)]
pub struct InitArgs {
    /// Directory for the CA, client certificate and config.
    #[arg(long)]
    pub dir: PathBuf,
    /// CA key type.
    #[arg(long, default_value = "ec-p256")]
    pub key_type: KeyType,
    /// Client key type (any `ca issue --new-key` type, ML-DSA included).
    #[arg(long, default_value = "ec-p256")]
    pub client_key_type: KeyType,
}
