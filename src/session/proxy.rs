//! Proxies from the environment: `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (each also
//! in lower case), read and validated here and handed to the HTTP client explicitly.
//!
//! The HTTP library would read the same variables itself, but it skips a value it cannot parse
//! without a word, so a typo sends the credentials request around the proxy the user meant to use.
//! Reading them here means what is checked is exactly what is used. Pure apart from the lookup
//! function it is given; never echoes a user name or password from a proxy URL.

use super::Error;
use super::endpoint::without_userinfo;
use std::ffi::OsString;
use url::{Host, Url};

/// The proxies a client uses, from [`Proxies::from_env`]. The default is no proxy.
#[derive(Clone, Default)]
pub struct Proxies {
    /// Proxy for `http://` endpoints.
    pub(super) http: Option<Url>,
    /// Proxy for `https://` endpoints.
    pub(super) https: Option<Url>,
    /// `NO_PROXY` as given (hosts, domain suffixes, IP addresses or ranges, comma-separated).
    pub(super) no_proxy: Option<String>,
    /// The variables `http` and `https` came from, for `doctor` to name them.
    pub(super) http_variable: Option<&'static str>,
    pub(super) https_variable: Option<&'static str>,
}

/// The proxy URLs may hold a password: `Debug` names the proxies' hosts only.
impl std::fmt::Debug for Proxies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = |u: &Option<Url>| u.as_ref().and_then(|u| u.host_str().map(str::to_string));
        f.debug_struct("Proxies")
            .field("http", &host(&self.http))
            .field("https", &host(&self.https))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

/// The variables for one destination scheme, upper case first (the order curl and the HTTP
/// library use).
const HTTPS: [&str; 2] = ["HTTPS_PROXY", "https_proxy"];
const HTTP: [&str; 2] = ["HTTP_PROXY", "http_proxy"];
const ALL: [&str; 2] = ["ALL_PROXY", "all_proxy"];
const NO: [&str; 2] = ["NO_PROXY", "no_proxy"];

impl Proxies {
    /// Reads the proxy variables through `env`. An empty value counts as unset; any other value of
    /// any of the six proxy variables must be a usable proxy URL (`http://` or `https://`; a bare
    /// `host:port` means `http://host:port`), or this is an [`Error::Proxy`] naming the variable.
    ///
    /// When `REQUEST_METHOD` is set the process runs as a CGI script, where `HTTP_PROXY` can come
    /// from a request's `Proxy:` header ("httpoxy"): then, as in the HTTP library, every proxy
    /// variable is ignored.
    pub fn from_env(env: &dyn Fn(&str) -> Option<OsString>) -> Result<Proxies, Error> {
        if env("REQUEST_METHOD").is_some() {
            return Ok(Proxies::default());
        }
        let first = |names: [&'static str; 2]| -> Result<Option<(Url, &'static str)>, Error> {
            let mut chosen = None;
            // Every set variable is checked, also one that the other spelling overrides: a typo
            // must not wait for the day the other variable is unset.
            for name in names {
                if let Some(url) = proxy_url(name, env(name))?
                    && chosen.is_none()
                {
                    chosen = Some((url, name));
                }
            }
            Ok(chosen)
        };
        let all = first(ALL)?;
        let (https, https_variable) = first(HTTPS)?.or_else(|| all.clone()).unzip();
        let (http, http_variable) = first(HTTP)?.or(all).unzip();
        let no_proxy = NO
            .iter()
            .filter_map(|name| env(name))
            .map(|v| v.to_string_lossy().into_owned())
            .find(|v| !v.trim().is_empty());
        Ok(Proxies {
            http,
            https,
            no_proxy,
            http_variable,
            https_variable,
        })
    }

    /// True when `NO_PROXY` exempts `host` from the proxy. Entries are comma-separated (spaces
    /// around them ignored): `*` matches every host; an IP address matches itself and an address
    /// range `addr/bits` the addresses in it (IP hosts only); any other entry is a domain name,
    /// with or without a leading `.` (or `*.`), and matches that name and every name under it.
    /// Names compare without case and without a trailing dot. Ports in entries are not supported
    /// and make the entry match nothing.
    pub(super) fn bypasses(&self, host: &Host<&str>) -> bool {
        let Some(list) = &self.no_proxy else {
            return false;
        };
        list.split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .any(|entry| no_proxy_entry_matches(entry, host))
    }
}

fn no_proxy_entry_matches(entry: &str, host: &Host<&str>) -> bool {
    if entry == "*" {
        return true;
    }
    let ip = match host {
        Host::Ipv4(ip) => Some(std::net::IpAddr::V4(*ip)),
        Host::Ipv6(ip) => Some(std::net::IpAddr::V6(*ip)),
        Host::Domain(_) => None,
    };
    let bare = entry.trim_start_matches('[').trim_end_matches(']');
    if let Ok(addr) = bare.parse::<std::net::IpAddr>() {
        return ip == Some(addr);
    }
    if let Some((addr, bits)) = entry.split_once('/') {
        let (Ok(addr), Ok(bits)) = (
            addr.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>(),
            bits.parse::<u32>(),
        ) else {
            return false;
        };
        return ip.is_some_and(|ip| in_range(ip, addr, bits));
    }
    let Host::Domain(name) = host else {
        return false;
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let domain = entry
        .trim_start_matches("*.")
        .trim_start_matches('.')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    !domain.is_empty()
        && (name == domain
            || name
                .strip_suffix(&domain)
                .is_some_and(|rest| rest.ends_with('.')))
}

/// `ip` lies in `net/bits` (same family only).
fn in_range(ip: std::net::IpAddr, net: std::net::IpAddr, bits: u32) -> bool {
    use std::net::IpAddr::{V4, V6};
    match (ip, net) {
        (V4(ip), V4(net)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (V6(ip), V6(net)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// The proxy URL in `value` of variable `name`, `None` when unset or empty.
fn proxy_url(name: &'static str, value: Option<OsString>) -> Result<Option<Url>, Error> {
    let Some(value) = value else {
        return Ok(None);
    };
    let Some(text) = value.to_str() else {
        return Err(Error::Proxy {
            variable: name,
            value: without_userinfo(&value.to_string_lossy()),
            reason: "it is not valid UTF-8".into(),
        });
    };
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let shown = without_userinfo(text);
    let bad = |reason: String| Error::Proxy {
        variable: name,
        value: shown.clone(),
        reason,
    };
    // `proxy.example:3128` without a scheme means plain http, as for curl.
    let with_scheme = if text.contains("://") {
        text.to_string()
    } else {
        format!("http://{text}")
    };
    let url = Url::parse(&with_scheme).map_err(|e| {
        bad(if shown == text {
            e.to_string()
        } else {
            // A `#` or `/` in a password makes the parser stop early: say what is most likely.
            format!("{e} (a password with `#`, `/`, `?` or `@` in it must be percent-encoded)")
        })
    })?;
    match url.scheme() {
        "http" | "https" => {}
        s if s.starts_with("socks") => {
            return Err(bad(format!(
                "{s} proxies are not supported; use an http:// or https:// proxy"
            )));
        }
        s => {
            return Err(bad(format!(
                "the scheme {s:?} is not a proxy scheme; use http:// or https://"
            )));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("there is no host".into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(
            "a query or fragment is not allowed in a proxy URL".into()
        ));
    }
    Ok(Some(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            vars.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn upper_case_wins_and_all_proxy_fills_in() {
        let p = Proxies::from_env(&env(&[
            ("HTTPS_PROXY", "http://upper:3128"),
            ("https_proxy", "http://lower:3128"),
            ("all_proxy", "proxy.example:8080"),
        ]))
        .unwrap();
        assert_eq!(p.https.unwrap().as_str(), "http://upper:3128/");
        assert_eq!(p.http.unwrap().as_str(), "http://proxy.example:8080/");
        assert!(p.no_proxy.is_none());
        let p = Proxies::from_env(&env(&[
            ("HTTPS_PROXY", ""),
            ("https_proxy", "http://lower:1"),
        ]))
        .unwrap();
        assert_eq!(p.https.unwrap().as_str(), "http://lower:1/");
        assert!(p.http.is_none());
    }

    #[test]
    fn no_proxy_and_cgi() {
        let p = Proxies::from_env(&env(&[
            ("HTTP_PROXY", "http://p:1"),
            ("no_proxy", "127.0.0.1,.internal"),
        ]))
        .unwrap();
        assert_eq!(p.no_proxy.as_deref(), Some("127.0.0.1,.internal"));
        // httpoxy: as a CGI script even an invalid HTTP_PROXY is ignored.
        let p = Proxies::from_env(&env(&[
            ("REQUEST_METHOD", "GET"),
            ("HTTP_PROXY", "http://p:notaport"),
        ]))
        .unwrap();
        assert!(p.http.is_none() && p.https.is_none());
    }

    /// Issue 14 (17): an invalid proxy variable is a configuration error naming the variable, and
    /// never echoes a password.
    #[test]
    fn invalid_proxy_variables_are_refused_without_their_password() {
        for name in [
            "HTTPS_PROXY",
            "https_proxy",
            "HTTP_PROXY",
            "http_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            for (value, secret) in [
                ("http://proxy:notaport", ""),
                ("http://user:pa#Zq9w@proxy:3128", "Zq9w"),
                ("http://user:pa/Zq9w@proxy:3128", "Zq9w"),
                ("http://user:pa?Zq9w@proxy:3128", "Zq9w"),
                ("http://Zq9w@[::1", "Zq9w"),
                ("ftp://user:Zq9w@proxy", "Zq9w"),
                ("socks5://user:Zq9w@proxy:1080", "Zq9w"),
                ("http://", ""),
                ("http://proxy:3128/?x=1", ""),
            ] {
                let e = Proxies::from_env(&env(&[(name, value)])).unwrap_err();
                let text = e.to_string();
                assert!(text.contains(name), "{name}={value}: {text}");
                assert!(matches!(e, Error::Proxy { .. }), "{e:?}");
                if !secret.is_empty() {
                    assert!(!text.contains(secret), "{name}={value}: {text}");
                    assert!(!text.contains("user"), "{name}={value}: {text}");
                    assert!(!format!("{e:?}").contains(secret), "{e:?}");
                }
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_proxy_is_refused() {
        use std::os::unix::ffi::OsStringExt;
        let e = Proxies::from_env(&|name| {
            (name == "https_proxy").then(|| OsString::from_vec(b"http://p\xff:1".to_vec()))
        })
        .unwrap_err();
        assert!(e.to_string().contains("https_proxy"), "{e}");
        assert!(e.to_string().contains("UTF-8"), "{e}");
    }

    #[test]
    fn no_proxy_matches_names_suffixes_addresses_and_ranges() {
        let p = |list: &str| Proxies {
            no_proxy: Some(list.into()),
            ..Proxies::default()
        };
        let url = |h: &str| Url::parse(&format!("https://{h}/")).unwrap();
        let yes = |list: &str, h: &str| p(list).bypasses(&url(h).host().unwrap());
        assert!(yes("*", "anything.example"));
        assert!(yes("example.com", "example.com"));
        assert!(yes("example.com", "a.b.EXAMPLE.com"));
        assert!(yes(" .example.com ,x", "a.example.com"));
        assert!(yes(".example.com", "example.com"));
        assert!(yes("*.example.com", "a.example.com"));
        assert!(!yes("example.com", "badexample.com"));
        assert!(!yes("a.example.com", "example.com"));
        assert!(yes("127.0.0.1", "127.0.0.1"));
        assert!(!yes("127.0.0.1", "127.0.0.2"));
        assert!(yes("10.0.0.0/8", "10.1.2.3"));
        assert!(!yes("10.0.0.0/8", "11.1.2.3"));
        assert!(yes("::1", "[::1]"));
        assert!(yes("[::1]", "[::1]"));
        assert!(yes("fd00::/8", "[fd12::1]"));
        assert!(yes("0.0.0.0/0", "192.0.2.1"));
        assert!(!yes("10.0.0.0/8", "ten.example"));
        assert!(!yes("", "example.com"));
        assert!(!Proxies::default().bypasses(&url("example.com").host().unwrap()));
    }

    #[test]
    fn debug_shows_hosts_only() {
        let p = Proxies::from_env(&env(&[("ALL_PROXY", "http://u:Zq9w@proxy:3128")])).unwrap();
        let d = format!("{p:?}");
        assert!(d.contains("proxy") && !d.contains("Zq9w"), "{d}");
    }
}
