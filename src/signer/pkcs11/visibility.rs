//! Why a module shows no token (or not the one asked for): advice for the "no token" and
//! "cannot initialise" errors.
//!
//! Owns: the checks a user would make by hand, done as this process sees things. For SoftHSM (the
//! module most often met without its configuration: an AWS SDK runs `credential_process` in its own
//! environment, often without `SOFTHSM2_CONF`) that is whether `SOFTHSM2_CONF` is set, whether the
//! configuration can be read, and whether its token directory exists and can be read by this user.
//! For every module, how to list the tokens it shows. Must not: change anything, or talk to the
//! module (it may not even initialise). Text from the environment and files is escaped.

use super::module::Module;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// The environment variable SoftHSM 2 reads its configuration path from.
pub(crate) const SOFTHSM2_CONF: &str = "SOFTHSM2_CONF";

/// Where SoftHSM 2 looks without `SOFTHSM2_CONF` (its build-time default: Debian, Fedora, source).
const SOFTHSM_DEFAULT_CONFS: [&str; 3] = [
    "/etc/softhsm/softhsm2.conf",
    "/etc/softhsm2.conf",
    "/usr/local/etc/softhsm2.conf",
];

/// Advice after a module at `path` failed or showed no matching token: SoftHSM's configuration as
/// this process sees it (when `softhsm`), then how to list tokens. Starts with "; ".
pub(crate) fn hint(path: &Path, softhsm: bool) -> String {
    let mut parts = Vec::new();
    if softhsm {
        parts.push(softhsm_diagnosis(
            std::env::var_os(SOFTHSM2_CONF).as_deref(),
        ));
    }
    let listing = format!(
        "list the tokens the module shows with `pkcs11-tool --module {} --list-token-slots`",
        escaped(&path.display().to_string())
    );
    if is_p11_kit_proxy(path) {
        parts.push(format!(
            "{listing}, and the modules the p11-kit proxy loads with `p11-kit list-modules`"
        ));
    } else {
        parts.push(listing);
    }
    if !softhsm {
        parts.push(
            "if the token lives in another module, name it with --pkcs11-lib or module-path= in \
             the URI"
                .into(),
        );
    }
    format!("; {}", parts.join("; "))
}

/// True when the module at `path` is (or, once initialised, reports itself as) SoftHSM.
pub(crate) fn is_softhsm(module: &Module) -> bool {
    if is_softhsm_path(&module.path) {
        return true;
    }
    // The p11-kit proxy (or a renamed copy) can front SoftHSM: its tokens say who made them. Each
    // slot is asked separately, so a slot that fails to answer is only skipped.
    let lib = &module.lib;
    let softhsm = |s: &str| s.contains("SoftHSM");
    lib.info().is_ok_and(|i| softhsm(&i.manufacturer))
        || lib.slots_with_token().is_ok_and(|slots| {
            slots
                .into_iter()
                .any(|s| lib.token_info(s).is_ok_and(|t| softhsm(&t.manufacturer)))
        })
}

/// True when the file name says SoftHSM (for a module that did not initialise).
pub(crate) fn is_softhsm_path(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().to_ascii_lowercase().contains("softhsm"))
}

fn is_p11_kit_proxy(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().contains("p11-kit-proxy"))
}

/// What SoftHSM would read, given the value of `SOFTHSM2_CONF` (`None`: unset).
fn softhsm_diagnosis(conf_env: Option<&OsStr>) -> String {
    let conf_env = conf_env.filter(|v| !v.is_empty());
    let (conf, origin) = match conf_env {
        Some(v) => {
            let p = PathBuf::from(v);
            let origin = format!("{SOFTHSM2_CONF}={}", escaped(&p.display().to_string()));
            (p, origin)
        }
        None => {
            let Some(default) = SOFTHSM_DEFAULT_CONFS
                .iter()
                .map(Path::new)
                .find(|p| p.exists())
            else {
                return format!(
                    "{SOFTHSM2_CONF} is not set and SoftHSM has no default configuration ({}): set \
                     {SOFTHSM2_CONF} to the configuration your tokens were made with, in the \
                     environment the agent runs in (for credential_process, the AWS SDK's or CLI's)",
                    SOFTHSM_DEFAULT_CONFS.join(", ")
                );
            };
            let origin = format!(
                "{SOFTHSM2_CONF} is not set, so SoftHSM reads its default {}",
                default.display()
            );
            (default.to_path_buf(), origin)
        }
    };
    let unset_advice = if conf_env.is_none() {
        format!(
            "; if your tokens were made with another configuration, set {SOFTHSM2_CONF} to it in the \
             environment the agent runs in (for credential_process, the AWS SDK's or CLI's)"
        )
    } else {
        String::new()
    };
    // Read like every file the user names (SOFTHSM2_CONF may be anything): regular and bounded.
    let raw = crate::userfile::read(&conf, crate::userfile::Kind::Config);
    let text = match raw {
        Ok(t) => String::from_utf8_lossy(&t).into_owned(),
        Err(e) => {
            return format!("{origin}, which cannot be read by this user: {e}{unset_advice}");
        }
    };
    let Some(dir) = token_dir(&text) else {
        return format!("{origin}, which sets no directories.tokendir{unset_advice}");
    };
    let dir_text = escaped(&dir.display().to_string());
    let state = match std::fs::read_dir(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            format!("its token directory {dir_text} does not exist")
        }
        Err(e) => format!("its token directory {dir_text} cannot be read by this user: {e}"),
        Ok(entries) => {
            let tokens: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect();
            let unreadable = tokens
                .iter()
                .filter(|p| std::fs::read_dir(p).is_err())
                .count();
            match (tokens.len(), unreadable) {
                (0, _) => format!(
                    "its token directory {dir_text} holds no token (softhsm2-util --init-token \
                     makes one)"
                ),
                (n, 0) => format!("its token directory {dir_text} holds {n} token(s)"),
                (n, u) => format!(
                    "its token directory {dir_text} holds {n} token(s), {u} of which cannot be \
                     read by this user"
                ),
            }
        }
    };
    format!("{origin}: {state}{unset_advice}")
}

/// The value of `directories.tokendir` in a SoftHSM 2 configuration (`key = value` lines, `#`
/// comments; the last setting wins, as in SoftHSM's parser).
fn token_dir(conf: &str) -> Option<PathBuf> {
    conf.lines()
        .filter_map(|l| {
            let l = l.trim();
            if l.starts_with('#') {
                return None;
            }
            let (k, v) = l.split_once('=')?;
            (k.trim() == "directories.tokendir" && !v.trim().is_empty())
                .then(|| PathBuf::from(v.trim()))
        })
        .next_back()
}

/// Text from the environment or a file as messages show it ([`crate::text::arg`]).
fn escaped(s: &str) -> String {
    crate::text::arg(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_dir_takes_the_last_uncommented_setting() {
        let conf = "# directories.tokendir = /old\ndirectories.tokendir = /a\n\
                    objectstore.backend = file\n directories.tokendir=/b/tokens/ \n";
        assert_eq!(token_dir(conf), Some(PathBuf::from("/b/tokens/")));
        assert_eq!(token_dir("log.level = ERROR\n"), None);
    }

    #[test]
    fn diagnosis_names_the_configuration_and_the_token_directory_state() {
        let d = tempfile::tempdir().unwrap();
        let conf = d.path().join("softhsm2.conf");
        let tokens = d.path().join("tokens");
        let diag = |conf: &Path| softhsm_diagnosis(Some(conf.as_os_str()));
        let missing = diag(&d.path().join("nope.conf"));
        assert!(
            missing.contains("nope.conf, which cannot be read by this user"),
            "{missing}"
        );
        std::fs::write(
            &conf,
            format!("directories.tokendir = {}\n", tokens.display()),
        )
        .unwrap();
        let text = diag(&conf);
        assert!(
            text.starts_with(&format!("SOFTHSM2_CONF={}: ", conf.display()))
                && text.ends_with(&format!(
                    "token directory {} does not exist",
                    tokens.display()
                )),
            "{text}"
        );
        std::fs::create_dir(&tokens).unwrap();
        assert!(diag(&conf).contains("holds no token"), "{}", diag(&conf));
        std::fs::create_dir(tokens.join("1b2e")).unwrap();
        assert!(diag(&conf).ends_with("holds 1 token(s)"), "{}", diag(&conf));
        std::fs::write(&conf, "log.level = ERROR\n").unwrap();
        assert!(diag(&conf).contains("sets no directories.tokendir"));
    }

    /// Issue 14 (7): SOFTHSM2_CONF is read only if it is a regular file, and only so much of it.
    #[test]
    fn diagnosis_of_a_fifo_or_device_configuration_does_not_block() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("conf-fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(softhsm_diagnosis(Some(fifo.as_os_str())));
        });
        let text = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("reading SOFTHSM2_CONF blocked");
        assert!(text.contains("it is a FIFO (named pipe)"), "{text}");
        let text = softhsm_diagnosis(Some(OsStr::new("/dev/zero")));
        assert!(text.contains("it is a character device"), "{text}");
    }

    #[test]
    fn unset_variable_is_named_with_the_default_read_instead() {
        let text = softhsm_diagnosis(None);
        assert!(text.starts_with("SOFTHSM2_CONF is not set"), "{text}");
        assert!(text.contains("environment the agent runs in"), "{text}");
    }

    #[test]
    fn hint_lists_tokens_with_pkcs11_tool_and_escapes_the_path() {
        let h = hint(Path::new("/opt/x\u{1b}[2J/libfoo.so"), false);
        assert!(
            h.starts_with("; list the tokens the module shows with `pkcs11-tool --module /opt/x\\u{1b}[2J/libfoo.so --list-token-slots`"),
            "{h}"
        );
        assert!(h.contains("--pkcs11-lib"), "{h}");
        let h = hint(
            Path::new("/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so"),
            false,
        );
        assert!(h.contains("p11-kit list-modules"), "{h}");
        assert!(is_softhsm_path(Path::new(
            "/usr/lib/softhsm/libsofthsm2.so"
        )));
        assert!(!is_softhsm_path(Path::new("/usr/lib/opensc-pkcs11.so")));
    }
}
