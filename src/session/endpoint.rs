//! The CreateSession endpoint: base URL, the path that is sent (and signed) and the `Host` value.
//!
//! Pure: parses and formats, never connects. What goes on the wire is exactly what is signed: the
//! path keeps its encoding and the query is encoded once, the way SigV4 canonicalises it.

use super::Error;
use reqwest::Url;

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
        let bad = |reason: &str| Error::Endpoint {
            url: without_userinfo(text),
            reason: reason.to_string(),
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

/// `text` with any `user:password@` in front of the host replaced by `…@`, so a URL that is rejected
/// for another reason (scheme, syntax) does not print a password.
fn without_userinfo(text: &str) -> String {
    let (scheme, rest) = match text.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), text),
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) => format!("{scheme}…{}", &rest[at..]),
        None => text.to_string(),
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

    #[test]
    fn rejected_urls_never_show_a_password() {
        for text in [
            "ftp://user:hunter2@host",
            "user:hunter2@host/x",
            "https://user:hunter2@ho st",
            "https://user:hunter2@host",
        ] {
            let e = Endpoint::parse(text).unwrap_err().to_string();
            assert!(!e.contains("hunter2"), "{text}: {e}");
            assert!(e.contains("…@ho"), "{text}: {e}");
        }
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
