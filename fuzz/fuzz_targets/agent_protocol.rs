//! The agent's socket protocol as the agent reads requests and the client reads answers.
//!
//! The first byte picks the decoder: even for a request line, odd for a response line. In a
//! response every `$S` becomes a secret access key and every `$T` a session token (distinctive
//! markers), as in `session_response`.
//!
//! Properties: no panic. A request is accepted only when it encodes back to itself; a refusal is
//! `bad_request` or `unsupported_version` with a short message free of control characters. An
//! answer's decode error never shows the secret key or token, whatever the answer; credentials come
//! out with a UTC whole-second expiration and survive encoding and decoding unchanged, as does a
//! status report (or the encoder's refusal when it would be too long); a refusal is shown without
//! control characters.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rolesanywhere_agent::agent::protocol::{self, Answer, ErrorCode, Response};
use std::sync::Arc;

const SECRET: &str = "SeCrEtKeY7Vq";
const TOKEN: &str = "SeSsIoNtOk4Wz";

fn request(data: &[u8]) {
    match protocol::decode_request(data) {
        Ok(r) => assert_eq!(
            protocol::decode_request(&r.encode()).as_ref(),
            Ok(&r),
            "an accepted request does not encode back to itself"
        ),
        Err(f) => {
            assert!(
                !f.message.chars().any(char::is_control) && f.message.len() < 200,
                "refusal message: {:?}",
                f.message
            );
            assert!(matches!(
                f.code,
                ErrorCode::BadRequest | ErrorCode::UnsupportedVersion
            ));
        }
    }
}

fn response(data: &[u8]) {
    let text = String::from_utf8_lossy(data)
        .replace("$S", SECRET)
        .replace("$T", TOKEN);
    match protocol::decode_response(text.as_bytes()) {
        Err(e) => {
            let shown = format!("{e} {e:?}");
            assert!(
                !shown.contains(SECRET) && !shown.contains(TOKEN),
                "a secret reached the error: {shown}"
            );
        }
        Ok(Answer::Credentials(c)) => {
            // Unless the markers were put in the key id, which is not a secret and is shown.
            if !c.access_key_id.contains(SECRET) && !c.access_key_id.contains(TOKEN) {
                let shown = format!("{c:?}");
                assert!(
                    !shown.contains(SECRET) && !shown.contains(TOKEN),
                    "a secret reached Debug: {shown}"
                );
            }
            assert_eq!(
                c.expiration,
                rolesanywhere_agent::text::utc_seconds(c.expires_at),
                "expiration not in UTC whole seconds"
            );
            let issued = rolesanywhere_agent::refresh::Issued {
                credentials: c,
                obtained_at: time::OffsetDateTime::UNIX_EPOCH,
                generation: 1,
            };
            let issued = Arc::new(issued);
            let line = Response::Credentials(issued.clone()).encode();
            let c = &issued.credentials;
            match protocol::decode_response(&line) {
                Ok(Answer::Credentials(back)) => {
                    assert!(
                        back.access_key_id == c.access_key_id
                            && back.secret_access_key.expose() == c.secret_access_key.expose()
                            && back.session_token.expose() == c.session_token.expose()
                            && back.expiration == c.expiration
                            && back.expires_at == c.expires_at,
                        "credentials changed in a round trip"
                    );
                }
                // Re-encoded with more escapes (a key id of control characters) it may outgrow
                // the limit: then the encoder refuses, which is what the agent would send.
                Ok(Answer::Refused(f)) => assert_eq!(f.code, ErrorCode::Unavailable),
                other => panic!("credentials did not survive a round trip: {other:?}"),
            }
        }
        Ok(Answer::Status(s)) => {
            let line = Response::Status(s.clone()).encode();
            match protocol::decode_response(&line) {
                Ok(Answer::Status(back)) => assert_eq!(back, s, "status changed"),
                Ok(Answer::Refused(f)) => assert_eq!(f.code, ErrorCode::Unavailable),
                other => panic!("status did not survive a round trip: {other:?}"),
            }
        }
        Ok(Answer::Refused(f)) => {
            let shown = f.to_string();
            assert!(
                !shown.chars().any(rolesanywhere_agent::text::needs_escape),
                "unescaped refusal: {shown:?}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((&b, rest)) if b % 2 == 0 => request(rest),
        Some((_, rest)) => response(rest),
        None => {}
    }
});
