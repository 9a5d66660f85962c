//! Choosing, loading and initialising the PKCS#11 module.
//!
//! Owns: the order of choice (`--pkcs11-lib`, then the URI's `module-path`/`module-name`, then the
//! p11-kit proxy on the usual library paths) and a process-wide registry so a module is loaded and
//! `C_Initialize`d once per process (SoftHSM reads its configuration at `C_Initialize`; a second
//! initialisation would fail or reset state). Must not: finalize a module a signer or session still
//! holds ([`finalize_unused`] finalizes only those nobody holds), or log in.

use super::error::Error;
use super::ffi::Library;
use super::uri::Pkcs11Uri;
use super::visibility;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A loaded, initialised module.
#[derive(Clone)]
pub(crate) struct Module {
    /// The function list.
    pub lib: Arc<Library>,
    /// The file it was loaded from (for messages).
    pub path: PathBuf,
}

static LOADED: Mutex<Vec<(PathBuf, Arc<Library>)>> = Mutex::new(Vec::new());

fn lib_dirs() -> Vec<PathBuf> {
    let multiarch = format!("/usr/lib/{}-linux-gnu", std::env::consts::ARCH);
    [
        multiarch.as_str(),
        "/usr/lib64",
        "/usr/lib",
        "/usr/local/lib",
        "/opt/homebrew/lib",
    ]
    .iter()
    .map(PathBuf::from)
    .collect()
}

fn so_suffix() -> &'static str {
    if cfg!(target_os = "macos") {
        "dylib"
    } else {
        "so"
    }
}

/// Where the p11-kit proxy usually lives.
pub(crate) fn p11_kit_proxy_candidates() -> Vec<PathBuf> {
    let name = format!("p11-kit-proxy.{}", so_suffix());
    lib_dirs().into_iter().map(|d| d.join(&name)).collect()
}

/// Files a `module-name` may refer to: `NAME.so` / `libNAME.so` in the PKCS#11 module directories
/// and the library directories.
fn module_name_candidates(name: &str, dir: Option<&Path>) -> Vec<PathBuf> {
    let files = [
        format!("{name}.{}", so_suffix()),
        format!("lib{name}.{}", so_suffix()),
    ];
    let dirs: Vec<PathBuf> = match dir {
        Some(d) => vec![d.to_path_buf()],
        None => lib_dirs()
            .into_iter()
            .flat_map(|d| [d.join("pkcs11"), d.join("softhsm"), d])
            .collect(),
    };
    dirs.iter()
        .flat_map(|d| files.iter().map(move |f| d.join(f)))
        .collect()
}

/// Loads the module `opts`/URIs name: `explicit` (`--pkcs11-lib`) first, then the first URI's
/// `module-path` (a file, or a directory holding `module-name`) or `module-name`, else the p11-kit
/// proxy. The error lists every path tried.
pub(crate) fn load(explicit: Option<&Path>, uris: &[&Pkcs11Uri]) -> Result<Module, Error> {
    if let Some(p) = explicit {
        return load_path(p);
    }
    for uri in uris {
        match (&uri.module_path, &uri.module_name) {
            (Some(p), name) if p.is_dir() => {
                let Some(name) = name else {
                    return Err(Error::NoModule {
                        tried: format!("module-path {} is a directory", crate::text::path(p)),
                        hint: "add module-name=NAME to the URI or give the module file".into(),
                    });
                };
                return load_first(&module_name_candidates(name, Some(p)), "module-name");
            }
            (Some(p), _) => return load_path(p),
            (None, Some(name)) => {
                return load_first(&module_name_candidates(name, None), "module-name");
            }
            (None, None) => {}
        }
    }
    load_first(&p11_kit_proxy_candidates(), "the p11-kit proxy")
}

fn load_first(candidates: &[PathBuf], what: &str) -> Result<Module, Error> {
    match candidates.iter().find(|p| p.is_file()) {
        Some(p) => load_path(p),
        None => Err(Error::NoModule {
            tried: format!(
                "{what} is not at any of {}",
                candidates
                    .iter()
                    .map(|p| crate::text::path(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            hint: "give the module with --pkcs11-lib PATH or module-path=PATH in the URI, or \
                   install p11-kit and register the module with it"
                .into(),
        }),
    }
}

/// `C_Finalize`s and forgets every loaded module that no signer or session holds any more (only
/// the registry does), so a long-running command that closed its identity (at shutdown, or to open
/// it again after the token went away) leaves no module state behind; a later [`load_path`] loads
/// and initialises afresh. Returns how many modules were finalized.
pub fn finalize_unused() -> usize {
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    let before = loaded.len();
    loaded.retain(|(_, lib)| {
        // The registry's reference is the only one: nothing can start using it while we hold the
        // registry's lock (new users clone it from here).
        if Arc::strong_count(lib) > 1 {
            return true;
        }
        let _ = lib.finalize();
        false
    });
    before - loaded.len()
}

/// Loads and initialises the module at `path`, or returns the one this process already loaded.
pub(crate) fn load_path(path: &Path) -> Result<Module, Error> {
    let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    // A poisoned registry only means another thread panicked while loading; its list is still sound.
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, lib)) = loaded.iter().find(|(p, _)| *p == key) {
        return Ok(Module {
            lib: Arc::clone(lib),
            path: path.to_path_buf(),
        });
    }
    // Before dlopen: the loader opens the path itself, and opening a FIFO blocks it forever. The
    // check opens without blocking and looks at what it opened (anyone who can swap the path between
    // this check and dlopen could as well put their own library there).
    if let Err(e) = crate::userfile::check_regular(path) {
        let reason = match e {
            crate::userfile::Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
                "no such file".into()
            }
            crate::userfile::Error::NotRegular { found } => format!(
                "it is {found}, not a regular file; give the path of the module's shared library"
            ),
            other => other.to_string(),
        };
        return Err(Error::Module {
            path: path.to_path_buf(),
            reason,
            hint: String::new(),
        });
    }
    let lib = Library::load(path).map_err(|reason| Error::Module {
        path: path.to_path_buf(),
        reason,
        hint: String::new(),
    })?;
    // SoftHSM fails C_Initialize when it cannot read its configuration or token directory.
    lib.initialize().map_err(|e| Error::Module {
        path: path.to_path_buf(),
        reason: e.to_string(),
        hint: if visibility::is_softhsm_path(path) {
            visibility::hint(path, true)
        } else {
            String::new()
        },
    })?;
    let lib = Arc::new(lib);
    loaded.push((key, Arc::clone(&lib)));
    Ok(Module {
        lib,
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_module_file_is_named() {
        let e = load_path(Path::new("/nonexistent/libnothing.so"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("/nonexistent/libnothing.so") && e.contains("no such file"),
            "{e}"
        );
    }

    #[test]
    fn a_fifo_or_device_is_refused_before_dlopen() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("module.so");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        // dlopen of a FIFO without a writer never returns: run it where a hang fails the test.
        let (tx, rx) = std::sync::mpsc::channel();
        let p = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(load_path(&p).err().map(|e| e.to_string()));
        });
        let e = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("loading a FIFO as the module blocked")
            .unwrap_or_default();
        assert!(e.contains("module.so") && e.contains("a FIFO"), "{e}");
        let e = load_path(Path::new("/dev/zero"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("a character device"), "{e}");
    }

    #[test]
    fn a_file_that_is_not_a_module_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fake.so");
        std::fs::write(&p, b"not an ELF file").unwrap();
        let e = load_path(&p)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("cannot load PKCS#11 module") && e.contains("fake.so"),
            "{e}"
        );
    }

    #[test]
    fn unknown_module_name_lists_what_was_tried() {
        let uri = Pkcs11Uri::parse("pkcs11:?module-name=surely-no-such-module").unwrap();
        let e = load(None, &[&uri])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("surely-no-such-module.so"), "{e}");
        assert!(e.contains("libsurely-no-such-module.so"), "{e}");
        assert!(e.contains("--pkcs11-lib"), "{e}");
    }
}
