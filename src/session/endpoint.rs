//! The CreateSession endpoint: base URL, the path that is sent (and signed) and the `Host` value.
//!
//! Pure: parses and formats, never connects. What goes on the wire is exactly what is signed: the
//! path keeps its encoding and the query is encoded once, the way SigV4 canonicalises it.

use super::Error;
use url::Url;

/// A validated base URL (`https://host[:port][/prefix]`).
#[derive(Debug, Clone)]
pub struct Endpoint {
    base: Url,
    host: String,
    path: String,
}

impl Endpoint {
    /// Parses a base URL. The scheme (`https` or `http`) is required; a path prefix is kept
    /// (`https://host/prefix` sends `POST /prefix/sessions`).
    pub fn parse(text: &str) -> Result<Endpoint, Error> {
        let shown = without_userinfo(text);
        // With a user name or password in the text, the parser's own complaint (an "invalid port"
        // when a `#` in the password ended the authority early) hides the real problem.
        let credential_note = if shown == text {
            ""
        } else {
            " (user names and passwords in the URL are not supported)"
        };
        let bad = |reason: &str| Error::Endpoint {
            url: shown.clone(),
            reason: format!("{reason}{credential_note}"),
        };
        if !text.contains("://") {
            return Err(bad(
                "the scheme is missing; write it in full, e.g. https://rolesanywhere.us-east-1.amazonaws.com",
            ));
        }
        let base = Url::parse(text).map_err(|e| bad(&e.to_string()))?;
        if base.scheme() != "https" && base.scheme() != "http" {
            return Err(bad("the scheme must be https (or http for local tests)"));
        }
        let Some(host) = base.host_str() else {
            return Err(bad("there is no host"));
        };
        if !base.username().is_empty() || base.password().is_some() {
            // The text holds a credential: name the host only.
            return Err(Error::Endpoint {
                url: format!("{}://…@{host}", base.scheme()),
                reason: "user names and passwords in the URL are not supported".into(),
            });
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(bad("a query or fragment is not allowed in the base URL"));
        }
        // `Url::port` is None for the scheme's default port, which is exactly when Host omits it.
        let host = match base.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let path = format!("{}/sessions", base.path().trim_end_matches('/'));
        Ok(Endpoint { base, host, path })
    }

    /// The `Host` header value, with `:port` when the port is not the scheme's default.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The host alone, without port: the name the server's certificate must be valid for.
    pub fn host_name(&self) -> &str {
        self.base.host_str().unwrap_or_default()
    }

    /// The CreateSession path as sent and signed (`/sessions`, or `/prefix/sessions`).
    pub fn sessions_path(&self) -> &str {
        &self.path
    }

    /// True for plain `http` to anything but the loopback interface: the credentials in the answer
    /// would cross a network unencrypted.
    pub fn is_cleartext_remote(&self) -> bool {
        if self.base.scheme() != "http" {
            return false;
        }
        let host = self.base.host_str().unwrap_or_default();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<std::net::IpAddr>() {
            Ok(ip) => !ip.is_loopback(),
            Err(_) => !host.eq_ignore_ascii_case("localhost"),
        }
    }

    /// `scheme://host[:port]/…/sessions`, for messages.
    pub fn display_url(&self) -> String {
        format!("{}://{}{}", self.base.scheme(), self.host, self.path)
    }

    /// The full request URL with `query` encoded as SigV4 canonicalises it.
    pub(crate) fn sessions_url(&self, query: &[(String, String)]) -> Url {
        let mut url = self.base.clone();
        url.set_path(&self.path);
        let q = query
            .iter()
            .map(|(k, v)| format!("{}={}", aws_encode(k), aws_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        url.set_query(Some(&q));
        url
    }
}

/// `text` with everything before its last `@` replaced by `…` (a plain scheme in front is kept), so
/// that no user name or password reaches a message, however the text is malformed.
///
/// A password may hold `#`, `?`, `/` or `\`, which end the authority for a URL parser: the parser's
/// view of where the user info stops cannot be trusted with a secret. Any `@` may end user info,
/// so the text up to the last one is hidden; a path with an `@` in it is hidden too, which costs
/// only some detail in an error message.
pub(crate) fn without_userinfo(text: &str) -> String {
    let Some(at) = text.rfind('@') else {
        return text.to_string();
    };
    let scheme = text[..at]
        .split_once("://")
        .map(|(scheme, _)| scheme)
        .filter(|s| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        });
    match scheme {
        Some(scheme) => format!("{scheme}://…{}", &text[at..]),
        None => format!("…{}", &text[at..]),
    }
}

/// SigV4 URI encoding: unreserved characters kept, every other byte as upper-case `%XX`.
fn aws_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 14 (13): user info is hidden however the text splits it (`#`, `?`, `/`, `\\` or `@`
    /// in a password end the authority for a URL parser).
    #[test]
    fn rejected_urls_never_show_user_info() {
        for (text, secrets) in [
            ("ftp://user:hunter2@host", &["user:", "hunter2"][..]),
            ("user:hunter2@host/x", &["user:", "hunter2"]),
            ("https://user:hunter2@ho st", &["user:", "hunter2"]),
            ("https://user:hunter2@host", &["user:", "hunter2"]),
            ("https://user:pa#Zq9w@host/", &["user:", "pa#", "Zq9w"]),
            ("https://u:p?Zq9w@h", &["u:p", "Zq9w"]),
            ("https://u:p/Zq9w@h", &["u:p", "Zq9w"]),
            ("https://u:p\\Zq9w@h", &["u:p", "Zq9w"]),
            ("https://u:p@Zq9w@h", &["u:p", "Zq9w"]),
            ("https://u:p[Zq9w@h", &["u:p", "Zq9w"]),
            ("https://Zq9wTOKEN@h", &["Zq9w"]),
            ("https://u:Zq9w@h/x?q=1", &["u:", "Zq9w"]),
            ("https://u:Zq9w@h:99999", &["u:", "Zq9w"]),
            ("u:p#Zq9w@h", &["u:p", "Zq9w"]),
            ("u:Zq9w@https://h", &["u:", "Zq9w"]),
            ("https://u:p#Zq9w@h#frag", &["u:p", "Zq9w"]),
        ] {
            let e = Endpoint::parse(text).unwrap_err();
            for shown in [e.to_string(), format!("{e:?}")] {
                for secret in secrets {
                    assert!(!shown.contains(secret), "{text}: {shown}");
                }
                assert!(shown.contains("…@"), "{text}: {shown}");
            }
        }
        // A host after the user info is still named.
        let e = Endpoint::parse("https://user:pa#Zq9w@gw.example/").unwrap_err();
        assert!(e.to_string().contains("…@gw.example/"), "{e}");
        assert!(e.to_string().contains("passwords"), "{e}");
    }

    #[test]
    fn an_at_sign_in_the_path_is_not_user_info() {
        let e = Endpoint::parse("https://gw.example/a@b").unwrap();
        assert_eq!(e.display_url(), "https://gw.example/a@b/sessions");
    }

    #[test]
    fn default_port_is_left_out_of_host() {
        let e = Endpoint::parse("https://rolesanywhere.us-east-1.amazonaws.com").unwrap();
        assert_eq!(e.host(), "rolesanywhere.us-east-1.amazonaws.com");
        assert_eq!(e.sessions_path(), "/sessions");
        let e = Endpoint::parse("https://example.com:443/").unwrap();
        assert_eq!(e.host(), "example.com");
    }

    #[test]
    fn non_default_port_is_kept_in_host() {
        let e = Endpoint::parse("http://127.0.0.1:8443").unwrap();
        assert_eq!(e.host(), "127.0.0.1:8443");
        let e = Endpoint::parse("https://[::1]:9000").unwrap();
        assert_eq!(e.host(), "[::1]:9000");
    }

    #[test]
    fn only_remote_plain_http_counts_as_cleartext() {
        for (url, clear) in [
            ("http://127.0.0.1:8080", false),
            ("http://[::1]:8080", false),
            ("http://localhost", false),
            ("http://10.0.0.1", true),
            ("http://gw.example.com", true),
            ("https://gw.example.com", false),
        ] {
            assert_eq!(
                Endpoint::parse(url).unwrap().is_cleartext_remote(),
                clear,
                "{url}"
            );
        }
    }

    #[test]
    fn base_path_prefix_is_sent_and_signed() {
        let e = Endpoint::parse("https://gw.example.com/prefix/ra/").unwrap();
        assert_eq!(e.sessions_path(), "/prefix/ra/sessions");
        let url = e.sessions_url(&[("a".into(), "x y".into())]);
        assert_eq!(url.path(), "/prefix/ra/sessions");
        assert_eq!(e.display_url(), "https://gw.example.com/prefix/ra/sessions");
    }

    #[test]
    fn query_is_encoded_like_the_canonical_query() {
        let e = Endpoint::parse("https://h").unwrap();
        let url = e.sessions_url(&[
            (
                "profileArn".into(),
                "arn:aws:rolesanywhere:us-east-1:123456789012:profile/p-1".into(),
            ),
            ("roleArn".into(), "a b+c~".into()),
        ]);
        assert_eq!(
            url.query(),
            Some(
                "profileArn=arn%3Aaws%3Arolesanywhere%3Aus-east-1%3A123456789012%3Aprofile%2Fp-1\
                 &roleArn=a%20b%2Bc~"
            )
        );
    }

    #[test]
    fn missing_scheme_and_odd_urls_are_rejected_with_reason() {
        for (bad, why) in [
            ("rolesanywhere.us-east-1.amazonaws.com", "scheme is missing"),
            ("ftp://host", "scheme must be https"),
            ("https://user:pw@host", "passwords"),
            ("https://host/?x=1", "query"),
        ] {
            let m = Endpoint::parse(bad).unwrap_err().to_string();
            assert!(m.contains(why), "{bad}: {m}");
            assert!(!m.contains("pw"), "{m}");
        }
    }
}
