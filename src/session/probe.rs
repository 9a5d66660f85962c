//! `doctor --live`'s look at the endpoint without a CreateSession: where the client would connect
//! (directly or through which proxy), what the host name resolves to, and one unsigned `GET` of
//! the sessions path over the client's own transport (the same resolver, proxy, trust roots and
//! time limits) whose answer carries the server's `Date`.
//!
//! The answer's status does not matter (the real service refuses an unsigned GET): only that it
//! came, over a verified connection, and its `Date` header.

use super::error::{Cause, classify};
use super::http::{self, Stage};
use super::{Client, Error, TransportFailure};
use std::net::SocketAddr;
use std::time::Instant;

/// How the client reaches the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// No proxy variable applies to the endpoint's scheme.
    Direct,
    /// A proxy is set, but `NO_PROXY` exempts the endpoint's host.
    Exempt {
        /// The proxy variable that would apply.
        variable: &'static str,
        /// `NO_PROXY` as set.
        no_proxy: String,
    },
    /// Through a proxy.
    Proxy {
        /// The variable it came from (`HTTPS_PROXY`, `all_proxy`…).
        variable: &'static str,
        /// `scheme://host:port` of the proxy, never its user name or password.
        url: String,
        /// The proxy's host (resolved by this machine; the endpoint's name is the proxy's to
        /// resolve).
        host: String,
        /// The proxy's port.
        port: u16,
    },
}

/// The answer to [`Client::probe`].
#[derive(Debug, Clone)]
pub struct Probe {
    /// HTTP status of the answer (any).
    pub status: u16,
    /// The `Date` header as sent (visible ASCII only), if any.
    pub date: Option<String>,
    /// The local clock when the request was about to be sent.
    pub sent_at: time::OffsetDateTime,
    /// The local clock when the answer's head had arrived.
    pub received_at: time::OffsetDateTime,
}

/// Why [`Client::probe`] failed: the step, and the error with its hint.
#[derive(Debug)]
pub struct ProbeError {
    /// What failed: resolving, connecting, TLS, or HTTP.
    pub stage: Stage,
    /// The failure ([`Error::Transport`], with the message and hint `credential-process` gives).
    pub error: Error,
}

impl Client {
    /// How this client reaches its endpoint (proxy variables and `NO_PROXY`, as the transport
    /// applies them).
    pub fn route(&self) -> Route {
        let url = self.endpoint.sessions_url(&[]);
        let proxies = &self.http.proxies;
        let (proxy, variable) = match url.scheme() {
            "https" => (proxies.https.as_ref(), proxies.https_variable),
            _ => (proxies.http.as_ref(), proxies.http_variable),
        };
        let (Some(proxy), Some(variable)) = (proxy, variable) else {
            return Route::Direct;
        };
        if url.host().is_some_and(|h| proxies.bypasses(&h)) {
            return Route::Exempt {
                variable,
                no_proxy: proxies.no_proxy.clone().unwrap_or_default(),
            };
        }
        let host = proxy.host_str().unwrap_or_default().to_string();
        let port = proxy.port_or_known_default().unwrap_or(80);
        Route::Proxy {
            variable,
            url: format!("{}://{}:{port}", proxy.scheme(), host),
            host,
            port,
        }
    }

    /// The addresses `host` resolves to, within the connect time limit (the resolver the
    /// transport uses, on a thread that is left behind if it does not answer in time).
    pub fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        http::resolve(host, port, Instant::now() + self.http.connect_timeout)
    }

    /// One unsigned `GET` of the sessions path, within the attempt's time limit (connecting
    /// within the connect limit): the answer's status and `Date`, or the step that failed.
    pub fn probe(&self) -> Result<Probe, ProbeError> {
        let mut url = self.endpoint.sessions_url(&[]);
        url.set_query(None);
        let request = http::Request {
            method: "GET",
            url: &url,
            host: self.endpoint.host(),
            headers: &[("Accept", "*/*")],
            body: &[],
        };
        let sent_at = time::OffsetDateTime::now_utc();
        let deadline = Instant::now() + self.timeout;
        let resp = self.http.send(&request, deadline).map_err(|source| {
            let failure = classify(&source, self.endpoint.host_name());
            let stage = match failure {
                TransportFailure::Untrusted | TransportFailure::WrongName { .. } => Stage::Tls,
                _ => source.stage(),
            };
            ProbeError {
                stage,
                error: Error::Transport {
                    url: self.endpoint.display_url(),
                    attempts: 1,
                    failure,
                    transient: false,
                    source: Box::new(Cause::of(&source)),
                },
            }
        })?;
        let received_at = time::OffsetDateTime::now_utc();
        Ok(Probe {
            status: resp.status,
            date: resp.headers.get_str("date").map(str::to_string),
            sent_at,
            received_at,
        })
    }
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110's IMF-fixdate, the form servers send).
pub fn parse_http_date(text: &str) -> Option<time::OffsetDateTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(text.trim(), &format)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{ClientOptions, Endpoint, Proxies};
    use std::ffi::OsString;

    #[test]
    fn http_dates_parse_and_other_forms_do_not() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(time::macros::datetime!(1994-11-06 08:49:37 UTC))
        );
        for bad in [
            "",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 +0100",
            "Sun, 31 Feb 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    fn client(url: &str, vars: &[(&'static str, &'static str)]) -> Client {
        let vars = vars.to_vec();
        let proxies = Proxies::from_env(&move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        })
        .unwrap();
        let opts = ClientOptions {
            proxies,
            ..ClientOptions::default()
        };
        Client::new(Endpoint::parse(url).unwrap(), &opts).unwrap()
    }

    #[test]
    fn route_names_the_variable_and_hides_the_password() {
        assert_eq!(client("https://h.example", &[]).route(), Route::Direct);
        let c = client(
            "https://h.example",
            &[("https_proxy", "http://u:Zq9w@proxy.example:3128")],
        );
        assert_eq!(
            c.route(),
            Route::Proxy {
                variable: "https_proxy",
                url: "http://proxy.example:3128".into(),
                host: "proxy.example".into(),
                port: 3128,
            }
        );
        let c = client("https://h.example", &[("ALL_PROXY", "proxy.example:8080")]);
        assert!(matches!(
            c.route(),
            Route::Proxy {
                variable: "ALL_PROXY",
                ..
            }
        ));
        // HTTP_PROXY does not apply to an https endpoint.
        let c = client("https://h.example", &[("HTTP_PROXY", "proxy.example:8080")]);
        assert_eq!(c.route(), Route::Direct);
        let c = client(
            "https://h.example",
            &[("HTTPS_PROXY", "proxy.example:1"), ("NO_PROXY", ".example")],
        );
        assert_eq!(
            c.route(),
            Route::Exempt {
                variable: "HTTPS_PROXY",
                no_proxy: ".example".into()
            }
        );
    }

    #[test]
    fn a_closed_port_fails_at_connecting() {
        // Bind and drop a listener: its port is closed for a while.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = client(&format!("http://127.0.0.1:{port}"), &[])
            .probe()
            .unwrap_err();
        assert_eq!(e.stage, Stage::Connect, "{}", e.error);
        assert!(e.error.hint().is_some());
    }
}
