//! Where the program's text goes: stdout (a command's output) and stderr (messages), safely.
//!
//! Every line written to stderr passes through here, which makes this the last line of defence for
//! the terminal and for PINs:
//!
//! - characters of [`text::needs_escape`] are escaped, including a newline inside a line, so no
//!   certificate subject, token label, file name or server message can colour the terminal or start
//!   a line of its own (a forged `rolesanywhere-agent: hint:`);
//! - the tail of every command-line argument from its `pin-value` on ([`text::pin_value_at`]) is
//!   masked wherever it appears, so an argument echoed whole (by clap, or by an error path that did
//!   not go through [`text::arg`]) is still cut where its `pin-value` starts.
//!
//! Writes never panic (Rust ignores SIGPIPE, so a reader that went away shows up as `EPIPE`): a
//! failed write to stderr is ignored, since the exit code still tells the story; a broken stdout is
//! remembered by [`Stdout`], and the run then ends with exit code 1 and no message (`| head -1`
//! closed the pipe on purpose, and the message would go where the output could not).

use crate::text;
use std::ffi::OsString;
use std::io::{self, Write};
use std::sync::RwLock;

/// The `pin-value` tails of the command line's arguments (see the module docs).
static ARGUMENT_SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// The command line's arguments (and values after `--flag=`) that hold a character of
/// [`text::needs_escape`], longest first: clap quotes them in multi-line messages.
static ARGUMENTS_TO_ESCAPE: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Remembers the `pin-value` tails of `args`, to be masked in everything written to stderr, and
/// the arguments with control characters, to be escaped whole in clap's messages.
pub(crate) fn mask_arguments(args: &[OsString]) {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let tails = args
        .iter()
        .filter_map(|a| {
            let tail = &a[text::pin_value_at(a)?..];
            // A bare attribute name carries nothing; masking it would garble our own messages.
            let name_only = tail.len() <= "pin-value=".len()
                && tail.trim_end_matches('=').eq_ignore_ascii_case("pin-value");
            (!name_only).then(|| tail.to_string())
        })
        .collect();
    let mut controlled: Vec<String> = args
        .iter()
        .flat_map(|a| [Some(a.as_str()), a.split_once('=').map(|(_, v)| v)])
        .flatten()
        .filter(|a| a.chars().any(text::needs_escape))
        .map(str::to_string)
        .collect();
    controlled.sort_by_key(|a| std::cmp::Reverse(a.len()));
    if let Ok(mut secrets) = ARGUMENT_SECRETS.write() {
        *secrets = tails;
    }
    if let Ok(mut escape) = ARGUMENTS_TO_ESCAPE.write() {
        *escape = controlled;
    }
}

/// `line` with every masked argument tail replaced by [`text::REDACTED`], in the forms an error
/// may have printed it: as given, escaped, or `Debug`-quoted.
fn mask(line: &str) -> String {
    let mut line = line.to_string();
    if let Ok(secrets) = ARGUMENT_SECRETS.read() {
        for tail in secrets.iter() {
            for form in [
                tail.clone(),
                text::escape(tail).into_owned(),
                tail.escape_debug().to_string(),
            ] {
                if line.contains(&form) {
                    line = line.replace(&form, text::REDACTED);
                }
            }
        }
    }
    line
}

/// Writes `line` and a newline to stderr: masked, escaped (a newline inside `line` too), errors
/// ignored.
pub fn stderr_line(line: &str) {
    let mut shown = text::escape(&mask(line)).into_owned();
    shown.push('\n');
    let _ = io::stderr().lock().write_all(shown.as_bytes());
}

/// Writes text of several lines that quotes arguments (clap's messages) to stderr: masked, each
/// line then cut where a `pin-value` starts ([`text::redact`]) and escaped, the line ends kept,
/// errors ignored.
pub(crate) fn stderr_text(text: &str) {
    let mut text = mask(text);
    // Before splitting into lines: a newline inside a quoted argument is not a line of clap's.
    if let Ok(arguments) = ARGUMENTS_TO_ESCAPE.read() {
        for a in arguments.iter() {
            text = text.replace(a, &text::escape(a));
        }
    }
    let mut shown = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, end) = match line.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (line, ""),
        };
        shown.push_str(&text::escape(&text::redact(body)));
        shown.push_str(end);
    }
    let _ = io::stderr().lock().write_all(shown.as_bytes());
}

/// Standard output that remembers whether its reader went away (`EPIPE`).
pub(crate) struct Stdout {
    inner: io::Stdout,
    broken: bool,
}

impl Stdout {
    pub(crate) fn new() -> Stdout {
        Stdout {
            inner: io::stdout(),
            broken: false,
        }
    }

    /// True once a write or flush failed because nobody reads stdout any more.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken
    }

    fn note<T>(&mut self, r: io::Result<T>) -> io::Result<T> {
        if let Err(e) = &r
            && e.kind() == io::ErrorKind::BrokenPipe
        {
            self.broken = true;
        }
        r
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let r = self.inner.lock().write(buf);
        self.note(r)
    }

    fn flush(&mut self) -> io::Result<()> {
        let r = self.inner.lock().flush();
        self.note(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_hides_whole_argument_tails_in_every_printed_form() {
        mask_arguments(&[
            "rolesanywhere-agent".into(),
            "--certificate=PKCS11:token=a?PIN-VALUE=12\x1b34".into(),
            "--private-key".into(),
            "pkcs11:token=a?pin-value".into(),
        ]);
        let shown = mask("cannot read certificate file PKCS11:token=a?PIN-VALUE=12\x1b34: nope");
        assert_eq!(
            shown,
            format!(
                "cannot read certificate file PKCS11:token=a?{}: nope",
                text::REDACTED
            )
        );
        let shown = mask(r#"file "PKCS11:token=a?PIN-VALUE=12\u{1b}34""#);
        assert!(!shown.contains("12"), "{shown}");
        // A bare attribute name is not masked: messages about pin-value stay readable.
        assert_eq!(
            mask("pin-value is a query attribute"),
            "pin-value is a query attribute"
        );
        mask_arguments(&[]);
    }
}
