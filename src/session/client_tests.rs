//! The client against a scripted local HTTP server, with a signer that counts its calls.

use super::attempt::MAX_BODY;
use super::*;
use crate::certs::Certificate;
use crate::keys::PublicKey;
use crate::signer::Identity;
use crate::signer::Signer;
use crate::sigv4x509::Digest;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

struct CountingSigner {
    public: PublicKey,
    calls: Arc<AtomicUsize>,
}

impl Signer for CountingSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }
    fn sign(&self, _digest: &Digest) -> Result<Vec<u8>, crate::signer::SignError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(vec![0xab; 256])
    }
    fn describe(&self) -> String {
        "counting signer".into()
    }
}

fn identity(calls: Arc<AtomicUsize>) -> Identity {
    let pem = include_bytes!("../../testdata/vectors/create-session-rsa/leaf.pem");
    let leaf = crate::certs::parse_pem_bundle(pem, "vector leaf")
        .unwrap()
        .remove(0);
    let public = Certificate::public_key(&leaf).clone();
    Identity {
        signer: Box::new(CountingSigner { public, calls }),
        leaf,
        chain: Vec::new(),
    }
}

/// Serves one scripted response per connection; returns the URL and the request heads seen.
fn serve(responses: Vec<String>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/base", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for resp in responses {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; len];
            let _ = std::io::Read::read_exact(&mut reader, &mut body);
            head.push_str(&String::from_utf8_lossy(&body));
            seen2.lock().unwrap().push(head);
            let mut stream = stream;
            let _ = stream.write_all(resp.as_bytes());
        }
    });
    (url, seen)
}

fn response(status: &str, headers: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

const OK_BODY: &str = r#"{"credentialSet":[{"credentials":{"accessKeyId":"ASIAEXAMPLE","secretAccessKey":"SECRETKEY-q1","sessionToken":"TOKEN-q2","expiration":"2030-01-01T00:00:00Z"}}]}"#;

fn request() -> SessionRequest {
    SessionRequest {
        region: "us-east-1".into(),
        profile_arn: "arn:aws:rolesanywhere:us-east-1:123456789012:profile/p".into(),
        role_arn: "arn:aws:iam::123456789012:role/r".into(),
        trust_anchor_arn: "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/t".into(),
        duration_seconds: 900,
        role_session_name: Some("s1".into()),
    }
}

fn client(url: &str) -> Client {
    let opts = ClientOptions {
        backoff_base: Duration::from_millis(10),
        ..ClientOptions::default()
    };
    Client::new(Endpoint::parse(url).unwrap(), &opts).unwrap()
}

#[test]
fn throttling_is_retried_and_every_attempt_is_signed_afresh() {
    let (url, seen) = serve(vec![
        response(
            "400 Bad Request",
            "X-Amzn-ErrorType: ThrottlingException\r\n",
            r#"{"message":"Rate exceeded"}"#,
        ),
        response("201 Created", "", OK_BODY),
    ]);
    let calls = Arc::new(AtomicUsize::new(0));
    let creds = client(&url)
        .create_session(&request(), &identity(calls.clone()), None)
        .unwrap();
    assert_eq!(creds.access_key_id, "ASIAEXAMPLE");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    let first = seen[0].to_ascii_lowercase();
    assert!(
        first.starts_with("post /base/sessions?profilearn=arn%3aaws%3arolesanywhere"),
        "{first}"
    );
    for needle in [
        "authorization: aws4-x509-rsa-sha256 credential=",
        "x-amz-x509: ",
        "content-type: application/json",
        r#"{"durationseconds":900,"rolesessionname":"s1"}"#,
    ] {
        assert!(first.contains(needle), "{needle} not in {first}");
    }
}

#[test]
fn client_errors_are_not_retried_and_keep_the_service_message() {
    let (url, seen) = serve(vec![response(
        "403 Forbidden",
        "X-Amzn-ErrorType: AccessDeniedException\r\n",
        r#"{"message":"Not authorized to set roleSessionName"}"#,
    )]);
    let calls = Arc::new(AtomicUsize::new(0));
    let e = client(&url)
        .create_session(&request(), &identity(calls.clone()), None)
        .unwrap_err();
    assert!(
        e.to_string()
            .ends_with("HTTP 403 AccessDeniedException: Not authorized to set roleSessionName"),
        "{e}"
    );
    assert!(e.hint().unwrap().contains("acceptRoleSessionName"));
    assert_eq!(
        (calls.load(Ordering::SeqCst), seen.lock().unwrap().len()),
        (1, 1)
    );
}

#[test]
fn connection_refused_is_retried_three_times() {
    // Bind then drop: nothing listens on the port any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let calls = Arc::new(AtomicUsize::new(0));
    let e = client(&format!("http://127.0.0.1:{port}"))
        .create_session(&request(), &identity(calls.clone()), None)
        .unwrap_err();
    assert!(matches!(e, Error::Transport { attempts: 3, .. }), "{e}");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[test]
fn untrusted_server_certificate_fails_once_with_the_ca_bundle_hint() {
    let dir = tempfile::tempdir().unwrap();
    let config = rolesanywhere_emulator::config::Config::from_toml_str(
        "region = \"us-east-1\"\n",
        dir.path(),
    )
    .unwrap();
    let emu = rolesanywhere_emulator::server::spawn(
        config,
        rolesanywhere_emulator::server::ServeOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            tls: rolesanywhere_emulator::server::Tls::SelfIssued { ca_out: None },
        },
    )
    .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let lines = Mutex::new(String::new());
    let sink = |s: &str| lines.lock().unwrap().push_str(s);
    let e = client(&emu.url())
        .create_session(&request(), &identity(calls.clone()), Some(&sink))
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Transport {
                attempts: 1,
                failure: TransportFailure::Untrusted,
                transient: false,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("not trusted"), "{e}");
    assert!(
        e.hint().unwrap().contains("AWS_CA_BUNDLE"),
        "{:?}",
        e.hint()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let text = lines.into_inner().unwrap();
    assert!(!text.contains("retrying"), "{text}");
}

#[test]
fn debug_callback_gets_signing_steps_and_status_but_no_secret() {
    let (url, _seen) = serve(vec![response("201 Created", "", OK_BODY)]);
    let lines = Mutex::new(String::new());
    let sink = |s: &str| lines.lock().unwrap().push_str(s);
    client(&url)
        .create_session(&request(), &identity(Arc::default()), Some(&sink))
        .unwrap();
    let text = lines.into_inner().unwrap();
    assert!(
        text.contains("canonical request:\nPOST\n/base/sessions\n"),
        "{text}"
    );
    assert!(
        text.contains("string to sign:\nAWS4-X509-RSA-SHA256\n"),
        "{text}"
    );
    assert!(text.contains("response status 201"), "{text}");
    assert!(
        !text.contains("SECRETKEY-q1") && !text.contains("TOKEN-q2"),
        "{text}"
    );
}

/// Issue 14 (2): a redirect is an error naming the Location (escaped, without user info); it
/// is neither followed nor retried.
#[test]
fn redirects_are_refused_not_followed_or_retried() {
    for status in [
        "301 Moved Permanently",
        "302 Found",
        "303 See Other",
        "307 Temporary Redirect",
        "308 Permanent Redirect",
    ] {
        // Where a followed redirect would go: a server that hands out credentials.
        let (target, target_seen) = serve(vec![response("201 Created", "", OK_BODY)]);
        let location = target.replace("http://", "http://user:Zq9w@") + "/x\u{202e}y";
        let (url, seen) = serve(vec![
            response(status, &format!("Location: {location}\r\n"), ""),
            response("201 Created", "", OK_BODY),
        ]);
        let calls = Arc::new(AtomicUsize::new(0));
        let e = client(&url)
            .create_session(&request(), &identity(calls.clone()), None)
            .unwrap_err();
        assert!(matches!(e, Error::Redirect { .. }), "{status}: {e:?}");
        let text = e.to_string();
        let code = &status[..3];
        let host = target
            .trim_start_matches("http://")
            .trim_end_matches("/base");
        assert!(
            text.contains(&format!("HTTP {code}"))
                && text.contains(&format!("@{host}/base/x\\u{{202e}}y\""))
                && text.contains(&format!("{url}/sessions")),
            "{text}"
        );
        assert!(
            !text.contains('\u{202e}') && !text.contains("Zq9w") && !text.contains("user"),
            "{text}"
        );
        assert!(e.hint().unwrap().contains("--endpoint"), "{:?}", e.hint());
        assert_eq!(seen.lock().unwrap().len(), 1, "{status}: retried");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(target_seen.lock().unwrap().is_empty(), "{status}: followed");
    }
    let (url, _seen) = serve(vec![response("302 Found", "", "")]);
    let e = client(&url)
        .create_session(&request(), &identity(Arc::default()), None)
        .unwrap_err();
    assert!(
        e.to_string().contains("nowhere (no Location header)"),
        "{e}"
    );
}

/// Issue 14 (17): an error answer is judged by its status, not its size: a 5xx with a body over
/// the cap is retried, a 4xx with one is a refusal (only a success body must fit).
#[test]
fn error_answers_with_huge_bodies_keep_their_status() {
    let huge = format!("<html>{}</html>", "x".repeat(2 * MAX_BODY));
    let (url, seen) = serve(vec![
        response("503 Service Unavailable", "", &huge),
        response("201 Created", "", OK_BODY),
    ]);
    let creds = client(&url)
        .create_session(&request(), &identity(Arc::default()), None)
        .unwrap();
    assert_eq!(creds.access_key_id, "ASIAEXAMPLE");
    assert_eq!(seen.lock().unwrap().len(), 2);

    let (url, seen) = serve(vec![response(
        "403 Forbidden",
        "X-Amzn-ErrorType: AccessDeniedException\r\n",
        &huge,
    )]);
    let e = client(&url)
        .create_session(&request(), &identity(Arc::default()), None)
        .unwrap_err();
    assert!(matches!(e, Error::Service { status: 403, .. }), "{e:?}");
    assert!(e.to_string().contains("<html>xxx"), "{e}");
    assert_eq!(seen.lock().unwrap().len(), 1);

    let big_success = format!("{}{}", &OK_BODY[..OK_BODY.len() - 1], " ".repeat(MAX_BODY));
    let (url, _seen) = serve(vec![response(
        "201 Created",
        "",
        &format!("{big_success}}}"),
    )]);
    let e = client(&url)
        .create_session(&request(), &identity(Arc::default()), None)
        .unwrap_err();
    assert!(e.to_string().contains("larger than"), "{e}");
}

/// Issue 14 (18): an expiration with an offset or fractions is passed on as `…Z`; one in the
/// past is refused.
#[test]
fn expiration_is_normalised_to_utc_and_a_past_one_refused() {
    let body = OK_BODY.replace("2030-01-01T00:00:00Z", "2030-01-01T02:00:00.75+02:00");
    let (url, _seen) = serve(vec![response("201 Created", "", &body)]);
    let creds = client(&url)
        .create_session(&request(), &identity(Arc::default()), None)
        .unwrap();
    assert_eq!(creds.expiration, "2030-01-01T00:00:00Z");

    let body = OK_BODY.replace("2030-01-01T00:00:00Z", "2021-06-01T00:00:00Z");
    let (url, seen) = serve(vec![response("201 Created", "", &body)]);
    let e = client(&url)
        .create_session(&request(), &identity(Arc::default()), None)
        .unwrap_err();
    assert!(matches!(e, Error::ExpiredCredentials { .. }), "{e:?}");
    assert!(
        e.to_string().contains("expire at 2021-06-01T00:00:00Z"),
        "{e}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
}

/// Issue 8 (5): another server's plain 404 page at the URL is about `--endpoint`, not the ARNs.
#[test]
fn html_not_found_from_another_server_names_the_url_and_endpoint() {
    let (url, _seen) = serve(vec![response(
        "404 Not Found",
        "Content-Type: text/html\r\n",
        "<html><body><h1>Not Found</h1></body></html>",
    )]);
    let e = client(&url)
        .create_session(&request(), &identity(Arc::default()), None)
        .unwrap_err();
    let hint = e.hint().unwrap();
    assert!(
        hint.contains(&format!("{url}/sessions")) && hint.contains("--endpoint"),
        "{hint}"
    );
    assert!(!hint.contains("--profile-arn"), "{hint}");
}

/// Issue 8 (5): "Untrusted signing certificate" for a CA leaf names the leaf's problem.
#[test]
fn untrusted_refusal_of_a_ca_leaf_keeps_the_message_and_names_the_leaf() {
    let pem = include_bytes!("../../testdata/vectors/create-session-p384-chain/chain.pem");
    let ca = crate::certs::parse_pem_bundle(pem, "vector intermediate")
        .unwrap()
        .remove(0);
    let body = r#"{"message":"Untrusted signing certificate"}"#;
    let (url, _seen) = serve(vec![response(
        "403 Forbidden",
        "X-Amzn-ErrorType: AccessDeniedException\r\n",
        body,
    )]);
    let id = Identity {
        signer: Box::new(CountingSigner {
            public: ca.public_key().clone(),
            calls: Arc::default(),
        }),
        leaf: ca.clone(),
        chain: Vec::new(),
    };
    let e = client(&url)
        .create_session(&request(), &id, None)
        .unwrap_err();
    assert!(matches!(e, Error::LeafRefused { .. }), "{e:?}");
    assert!(
        e.to_string()
            .ends_with("HTTP 403 AccessDeniedException: Untrusted signing certificate"),
        "{e}"
    );
    let hint = e.hint().unwrap();
    assert!(
        hint.starts_with(&format!("the leaf certificate {} is a CA", ca.subject())),
        "{hint}"
    );
    assert!(!hint.contains("--intermediates"), "{hint}");
}

/// A CONNECT proxy on loopback that tunnels to `to` after answering `answer`'s status line; returns
/// its `host:port` and the request heads it saw.
fn connect_proxy(to: String, answer: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        while let Ok((client, _)) = listener.accept() {
            let mut reader = BufReader::new(client.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            seen2.lock().unwrap().push(head);
            let mut client = client;
            let _ = client.write_all(format!("HTTP/1.1 {answer}\r\n\r\n").as_bytes());
            if !answer.starts_with('2') {
                continue;
            }
            let server = std::net::TcpStream::connect(&to).unwrap();
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || std::io::copy(&mut s2, &mut c2));
            std::thread::spawn(move || {
                let (mut reader, mut server) = (reader, server);
                let _ = std::io::copy(&mut reader, &mut server);
            });
        }
    });
    (addr, seen)
}

fn tls_emulator(
    dir: &std::path::Path,
) -> (rolesanywhere_emulator::server::Running, super::CaBundle) {
    let config =
        rolesanywhere_emulator::config::Config::from_toml_str("region = \"us-east-1\"\n", dir)
            .unwrap();
    let ca = dir.join("ca.pem");
    let emu = rolesanywhere_emulator::server::spawn(
        config,
        rolesanywhere_emulator::server::ServeOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            tls: rolesanywhere_emulator::server::Tls::SelfIssued {
                ca_out: Some(ca.clone()),
            },
        },
    )
    .unwrap();
    let bundle = super::CaBundle {
        path: ca,
        variable: "AWS_CA_BUNDLE",
    };
    (emu, bundle)
}

fn proxied_client(url: &str, bundle: super::CaBundle, proxy: &str) -> Client {
    let proxies =
        Proxies::from_env(&|name| (name == "HTTPS_PROXY").then(|| std::ffi::OsString::from(proxy)))
            .unwrap();
    let opts = ClientOptions {
        backoff_base: Duration::from_millis(10),
        ca_bundle: Some(bundle),
        proxies,
        ..ClientOptions::default()
    };
    Client::new(Endpoint::parse(url).unwrap(), &opts).unwrap()
}

/// https through an HTTP proxy is a CONNECT tunnel with TLS end to end to the server, the proxy's
/// user and password (percent-decoded) sent as Basic authorization to the proxy only.
#[test]
fn https_goes_through_a_connect_tunnel_with_proxy_authorization() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, bundle) = tls_emulator(dir.path());
    let emu_addr = emu.url().trim_start_matches("https://").to_string();
    let (proxy, seen) = connect_proxy(emu_addr.clone(), "200 Connection established");
    let calls = Arc::new(AtomicUsize::new(0));
    let e = proxied_client(
        &emu.url(),
        bundle,
        &format!("http://us%40er:pa%3Ass@{proxy}"),
    )
    .create_session(&request(), &identity(calls.clone()), None)
    .unwrap_err();
    // The emulator itself answered (the counting signer's signature is not valid): the tunnel
    // and the TLS session inside it worked.
    assert!(matches!(e, Error::Service { status: 403, .. }), "{e:?}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode("us@er:pa:ss");
    assert!(
        seen[0].starts_with(&format!("CONNECT {emu_addr} HTTP/1.1\r\n"))
            && seen[0].contains(&format!("Proxy-Authorization: Basic {basic}\r\n")),
        "{}",
        seen[0]
    );
    assert!(!seen[0].contains("x-amz-x509"), "{}", seen[0]);
}

/// A proxy that refuses the tunnel is a retried transport failure naming its status, without the
/// proxy password; NO_PROXY sends the request around the proxy.
#[test]
fn a_refused_tunnel_is_a_transport_failure_and_no_proxy_bypasses_it() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, bundle) = tls_emulator(dir.path());
    let emu_addr = emu.url().trim_start_matches("https://").to_string();
    let (proxy, seen) = connect_proxy(emu_addr, "407 Proxy Authentication Required");
    let e = proxied_client(
        &emu.url(),
        bundle.clone(),
        &format!("http://u:Zq9w@{proxy}"),
    )
    .create_session(&request(), &identity(Arc::default()), None)
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Transport {
                attempts: 3,
                failure: TransportFailure::Io,
                ..
            }
        ),
        "{e:?}"
    );
    let chain = format!("{:#}", anyhow::Error::from(e));
    assert!(
        chain.contains("HTTP 407") && !chain.contains("Zq9w"),
        "{chain}"
    );
    assert_eq!(seen.lock().unwrap().len(), 3);

    let proxies = Proxies::from_env(&|name| match name {
        "HTTPS_PROXY" => Some(format!("http://{proxy}").into()),
        "NO_PROXY" => Some("localhost,127.0.0.0/8".into()),
        _ => None,
    })
    .unwrap();
    let opts = ClientOptions {
        ca_bundle: Some(bundle),
        proxies,
        ..ClientOptions::default()
    };
    let e = Client::new(Endpoint::parse(&emu.url()).unwrap(), &opts)
        .unwrap()
        .create_session(&request(), &identity(Arc::default()), None)
        .unwrap_err();
    assert!(matches!(e, Error::Service { status: 403, .. }), "{e:?}");
    assert_eq!(seen.lock().unwrap().len(), 3, "NO_PROXY not honoured");
}
