//! The `rolesanywhere-emulator` command: `serve`, `ca …` and `init`.
//!
//! Thin: clap structs are the raw layer, the library does the work. Exit codes are decided here
//! only: 0 success, 1 operational failure, 2 usage or configuration error. stdout carries only
//! the command's output (the URL line, ARNs); diagnostics go to stderr.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::Parser as _;
use rolesanywhere_emulator::ca::{Ca, IssueRequest, KeySource, write_private};
use rolesanywhere_emulator::cli::{CaCommand, Cli, Command, InitArgs, IssueArgs, ServeArgs};
use rolesanywhere_emulator::config::Config;
use rolesanywhere_emulator::server::{self, ServeOptions, Tls};
use time::OffsetDateTime;

/// A failure and the exit code it maps to.
struct Failure {
    code: u8,
    error: anyhow::Error,
}

fn usage(error: anyhow::Error) -> Failure {
    Failure { code: 2, error }
}

fn operational(error: anyhow::Error) -> Failure {
    Failure { code: 1, error }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(a) => serve(a),
        Command::Ca(c) => ca(c).map_err(classify),
        Command::Init(a) => init(a).map_err(classify),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("rolesanywhere-emulator: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}

fn serve(a: ServeArgs) -> Result<(), Failure> {
    let mut settings =
        rolesanywhere_emulator::config::Settings::from_file(&a.config).map_err(usage)?;
    if let Some(n) = a.credential_seconds {
        let n = rolesanywhere_emulator::config::credential_seconds(n)
            .map_err(|e| usage(anyhow!("--{}", e.replace('_', "-"))))?;
        settings.limits.credential_seconds = Some(n);
    }
    let throttle = &mut settings.limits.throttle;
    let rate = |flag: &str, n: u64| {
        rolesanywhere_emulator::throttle::check_rate(flag, n).map_err(|e| usage(anyhow!(e)))
    };
    if let Some(n) = a.throttle_per_second {
        throttle.create_session_per_second = rate("--throttle-per-second", n)?;
        throttle.enabled = true;
    }
    if let Some(n) = a.throttle_total_per_second {
        throttle.total_per_second = Some(rate("--throttle-total-per-second", n)?);
        throttle.enabled = true;
    }
    if a.no_throttle {
        throttle.enabled = false;
    }
    let tls = if a.http {
        Tls::None
    } else if let (Some(cert), Some(key)) = (a.tls_cert, a.tls_key) {
        Tls::Files { cert, key }
    } else {
        if a.tls_ca_out.is_none() {
            eprintln!(
                "rolesanywhere-emulator: hint: the TLS certificate comes from a throwaway CA; pass --tls-ca-out FILE and set AWS_CA_BUNDLE=FILE for clients"
            );
        }
        Tls::SelfIssued {
            ca_out: a.tls_ca_out,
        }
    };
    let running = server::spawn_with(
        settings.config,
        settings.limits,
        ServeOptions {
            listen: a.listen,
            tls,
        },
    )
    .map_err(|e| classify(e.into()))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}", running.url())
        .and_then(|()| out.flush())
        .map_err(|e| operational(anyhow!("cannot write to stdout: {e}")))?;
    drop(out);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| operational(anyhow!("cannot start the signal runtime: {e}")))?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    });
    drop(running);
    Ok(())
}

fn parse_time(s: &str, flag: &str) -> anyhow::Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(|e| {
        BadArgument(format!(
            "{flag} {s:?} is not RFC 3339 (e.g. 2026-03-01T12:00:00Z): {e}"
        ))
        .into()
    })
}

fn ca(c: CaCommand) -> anyhow::Result<()> {
    match c {
        CaCommand::Init { dir, key_type, cn } => {
            Ca::init(&dir, key_type, &cn)?;
            eprintln!("created CA in {}", dir.display());
        }
        CaCommand::Intermediate { dir, out_dir, cn } => {
            Ca::load(&dir)?.intermediate(&out_dir, &cn)?;
            eprintln!(
                "created intermediate CA in {} (send {} as the chain)",
                out_dir.display(),
                out_dir.join("chain.pem").display()
            );
        }
        CaCommand::Issue(a) => issue(*a)?,
        CaCommand::Revoke { dir, certificate } => {
            let pem = std::fs::read_to_string(&certificate).map_err(|source| {
                rolesanywhere_emulator::ca::Error::Read {
                    path: certificate.clone(),
                    source,
                }
            })?;
            let crl = Ca::load(&dir)?.revoke(&pem)?;
            eprintln!("revoked; CRL written to {}", crl.display());
        }
    }
    Ok(())
}

fn issue(a: IssueArgs) -> anyhow::Result<()> {
    if let Some(path) = &a.key_out {
        rolesanywhere_emulator::files::check_private_path(path)?;
    }
    let ca = Ca::load(&a.dir)?;
    let read_error = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| rolesanywhere_emulator::ca::Error::Read { path, source }
    };
    let key = if let Some(path) = &a.csr {
        KeySource::Csr(std::fs::read(path).map_err(read_error(path))?)
    } else if let Some(path) = &a.public_key {
        KeySource::PublicKeyPem(std::fs::read_to_string(path).map_err(read_error(path))?)
    } else if let Some(kind) = a.new_key {
        KeySource::NewKey(kind)
    } else {
        bail!("one of --csr, --public-key or --new-key is required");
    };
    let mut req = IssueRequest::new(&a.subject, key);
    req.sans = a.san;
    if let Some(days) = a.days {
        req.not_after =
            req.not_before + time::Duration::hours(1) + time::Duration::days(i64::from(days));
    }
    if let (Some(nb), Some(na)) = (&a.not_before, &a.not_after) {
        req.not_before = parse_time(nb, "--not-before")?;
        req.not_after = parse_time(na, "--not-after")?;
    }
    req.digital_signature = !a.no_digital_signature;
    req.is_ca = a.ca;
    let issued = ca.issue(&req)?;
    if let (Some(path), Some(key_pem)) = (&a.key_out, &issued.key_pem) {
        write_private(path, key_pem)?;
    }
    rolesanywhere_emulator::files::write_public(&a.out, issued.cert_pem.as_bytes())?;
    eprintln!(
        "issued serial {} to {}",
        issued.serial_decimal,
        a.out.display()
    );
    Ok(())
}

fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    rolesanywhere_emulator::ca::fill_random(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    server::uuid_text(&b)
}

/// `len` characters drawn uniformly from `alphabet` (its length a power of two).
fn random_text(len: usize, alphabet: &[u8]) -> String {
    let mut bytes = vec![0u8; len];
    rolesanywhere_emulator::ca::fill_random(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(alphabet[usize::from(*b) & (alphabet.len() - 1)]))
        .collect()
}

fn init(a: InitArgs) -> anyhow::Result<()> {
    // Refuse before the CA exists: a CA without its client would make a second run fail too.
    rolesanywhere_emulator::files::check_private_path(&a.dir.join("client.key"))?;
    let ca_dir = a.dir.join("ca");
    let ca = Ca::init(&ca_dir, a.key_type, "rolesanywhere-emulator demo CA")?;
    let issued = ca.issue(&IssueRequest::new(
        "CN=demo-client,O=rolesanywhere-emulator",
        KeySource::NewKey(a.client_key_type),
    ))?;
    rolesanywhere_emulator::files::write_public(
        &a.dir.join("client.pem"),
        issued.cert_pem.as_bytes(),
    )?;
    if let Some(key) = &issued.key_pem {
        write_private(&a.dir.join("client.key"), key)?;
    }
    let account = "123456789012";
    let region = "us-east-1";
    let anchor = format!(
        "arn:aws:rolesanywhere:{region}:{account}:trust-anchor/{}",
        uuid_v4()
    );
    let profile = format!(
        "arn:aws:rolesanywhere:{region}:{account}:profile/{}",
        uuid_v4()
    );
    let role = format!("arn:aws:iam::{account}:role/rolesanywhere-demo");
    // Admin credentials for the control plane, in the AWS shapes (20-character AKIA id,
    // 40-character secret) so tools that check the form accept them.
    let access_key_id = format!(
        "AKIA{}",
        random_text(16, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    );
    let secret = zeroize::Zeroizing::new(random_text(
        40,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
    ));
    let config = zeroize::Zeroizing::new(format!(
        "region = \"{region}\"\n\n[[trust_anchors]]\narn = \"{anchor}\"\ncertificates = \"ca/ca.pem\"\nenabled = true\n\n\
         [[profiles]]\narn = \"{profile}\"\nrole_arns = [\"{role}\"]\nduration_seconds = 3600\naccept_role_session_name = false\nenabled = true\n\n\
         [[roles]]\narn = \"{role}\"\nmax_session_duration = 3600\n\n\
         [admin]\naccess_key_id = \"{access_key_id}\"\nsecret_access_key = \"{}\"\naccount_id = \"{account}\"\n",
        secret.as_str()
    ));
    let config_path = a.dir.join("config.toml");
    // The config holds the admin secret: 0600 like a key.
    write_private(&config_path, &config)?;
    // Prove the written config loads before telling the user to use it.
    Config::from_file(&config_path).context("internal error: the configuration just written")?;
    // One write, its failure an error (a closed pipe: `init | head -1`), never a panic.
    let lines = zeroize::Zeroizing::new(format!(
        "TRUST_ANCHOR_ARN={anchor}\nPROFILE_ARN={profile}\nROLE_ARN={role}\n\
         AWS_ACCESS_KEY_ID={access_key_id}\nAWS_SECRET_ACCESS_KEY={}\n",
        secret.as_str()
    ));
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        out.write_all(lines.as_bytes())
            .and_then(|()| out.flush())
            .context("cannot write the settings to stdout")?;
    }
    eprintln!(
        "wrote {}, {}, {} and {}",
        config_path.display(),
        ca_dir.join("ca.pem").display(),
        a.dir.join("client.pem").display(),
        a.dir.join("client.key").display()
    );
    Ok(())
}

/// An argument value that cannot be used (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadArgument(String);

/// The one place a failure's class is decided: the first error in the chain that knows whether it
/// is a usage or configuration mistake (exit 2) decides; anything else is operational (exit 1).
fn classify(error: anyhow::Error) -> Failure {
    use rolesanywhere_emulator::{ca, files};
    let is_usage = error
        .chain()
        .find_map(|cause| {
            if let Some(e) = cause.downcast_ref::<ca::Error>() {
                Some(e.is_usage())
            } else if let Some(e) = cause.downcast_ref::<files::Error>() {
                Some(e.is_usage())
            } else if let Some(e) = cause.downcast_ref::<server::Error>() {
                Some(e.is_usage())
            } else if cause.is::<BadArgument>() {
                Some(true)
            } else {
                None
            }
        })
        .unwrap_or(false);
    if is_usage {
        usage(error)
    } else {
        operational(error)
    }
}
