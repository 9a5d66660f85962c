//! The sessions the emulator granted: every credential set CreateSession issued, by access key id,
//! so that STS ([`crate::sts`]) can authenticate requests signed with them and the debug view
//! (`GET /_emulator/sessions/{accessKeyId}`) can show what a session carries.
//!
//! Bounded: only the newest [`SESSIONS_KEPT`] sessions are remembered (the oldest is forgotten
//! first), so a long-running emulator does not grow. The secret key and session token live in
//! zeroizing strings and never appear in `Debug` output, the debug view or logs.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use time::OffsetDateTime;
use zeroize::Zeroizing;

/// How many sessions the server remembers (the most recent).
pub const SESSIONS_KEPT: usize = 10_000;

/// One granted session.
#[derive(Clone)]
pub struct IssuedSession {
    /// `ASIA…`.
    pub access_key_id: String,
    /// The secret access key handed out.
    pub secret_access_key: Zeroizing<String>,
    /// The session token handed out.
    pub session_token: Zeroizing<String>,
    /// The role assumed.
    pub role_arn: String,
    /// `arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE-NAME/SESSION-NAME`.
    pub assumed_role_arn: String,
    /// `AROA…:SESSION-NAME`, the part before the colon stable per role.
    pub user_id: String,
    /// The role's account.
    pub account: String,
    /// The session name.
    pub role_session_name: String,
    /// Principal tags of the session, key → value, in mapping order (subject, issuer, SAN).
    pub principal_tags: Vec<(String, String)>,
    /// `CN=…` from the certificate's subject, or `ID=serial` without a usable CN.
    pub source_identity: String,
    /// The profile's session policy, if it has one.
    pub session_policy: Option<String>,
    /// The profile the session came through.
    pub profile_arn: String,
    /// The trust anchor the certificate chained to.
    pub trust_anchor_arn: String,
    /// The certificate's serial, base 10.
    pub serial_decimal: String,
    /// When the session was granted.
    pub issued_at: OffsetDateTime,
    /// When the credentials stop working.
    pub expiration: OffsetDateTime,
}

impl std::fmt::Debug for IssuedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedSession")
            .field("access_key_id", &self.access_key_id)
            .field("assumed_role_arn", &self.assumed_role_arn)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

impl IssuedSession {
    /// The debug view: everything but the secret key and the session token.
    pub fn public_view(&self) -> serde_json::Value {
        let tags: serde_json::Map<String, serde_json::Value> = self
            .principal_tags
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        serde_json::json!({
            "accessKeyId": self.access_key_id,
            "roleArn": self.role_arn,
            "assumedRoleArn": self.assumed_role_arn,
            "userId": self.user_id,
            "account": self.account,
            "roleSessionName": self.role_session_name,
            "principalTags": tags,
            "sourceIdentity": self.source_identity,
            "sessionPolicy": self.session_policy,
            "profileArn": self.profile_arn,
            "trustAnchorArn": self.trust_anchor_arn,
            "serialNumber": self.serial_decimal,
            "issuedAt": crate::server::format_expiration(self.issued_at),
            "expiration": crate::server::format_expiration(self.expiration),
        })
    }
}

/// The last `capacity` sessions, by access key id.
pub struct SessionStore {
    inner: Mutex<Inner>,
    capacity: usize,
}

#[derive(Default)]
struct Inner {
    by_key: HashMap<String, IssuedSession>,
    /// Access key ids, oldest first.
    order: VecDeque<String>,
}

impl SessionStore {
    /// An empty store that remembers at most `capacity` sessions.
    pub fn new(capacity: usize) -> SessionStore {
        SessionStore {
            inner: Mutex::new(Inner::default()),
            capacity,
        }
    }

    /// Remembers `s`, forgetting the oldest sessions beyond the capacity.
    pub fn insert(&self, s: IssuedSession) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        while inner.order.len() >= self.capacity {
            if let Some(old) = inner.order.pop_front() {
                inner.by_key.remove(&old);
            }
        }
        inner.order.push_back(s.access_key_id.clone());
        inner.by_key.insert(s.access_key_id.clone(), s);
    }

    /// The session issued with this access key id, if it is still remembered.
    pub fn get(&self, access_key_id: &str) -> Option<IssuedSession> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_key
            .get(access_key_id)
            .cloned()
    }

    /// How many sessions are remembered.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .order
            .len()
    }

    /// True when no session is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(key: &str) -> IssuedSession {
        IssuedSession {
            access_key_id: key.into(),
            secret_access_key: Zeroizing::new("secret-value".into()),
            session_token: Zeroizing::new("token-value".into()),
            role_arn: "arn:aws:iam::123456789012:role/demo".into(),
            assumed_role_arn: "arn:aws:sts::123456789012:assumed-role/demo/s".into(),
            user_id: "AROAAAAAAAAAAAAAAAAAA:s".into(),
            account: "123456789012".into(),
            role_session_name: "s".into(),
            principal_tags: vec![("x509Subject/CN".into(), "client".into())],
            source_identity: "CN=client".into(),
            session_policy: None,
            profile_arn: String::new(),
            trust_anchor_arn: String::new(),
            serial_decimal: "1".into(),
            issued_at: OffsetDateTime::UNIX_EPOCH,
            expiration: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn keeps_only_the_newest_sessions() {
        let store = SessionStore::new(3);
        for k in ["A", "B", "C", "D", "E"] {
            store.insert(session(k));
        }
        assert_eq!(store.len(), 3);
        assert!(store.get("A").is_none() && store.get("B").is_none());
        for k in ["C", "D", "E"] {
            assert_eq!(store.get(k).expect(k).access_key_id, k);
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_and_the_public_view() {
        let s = session("ASIAEXAMPLE");
        let debug = format!("{s:?}");
        let view = s.public_view().to_string();
        for text in [&debug, &view] {
            assert!(text.contains("ASIAEXAMPLE"), "{text}");
            assert!(
                !text.contains("secret-value") && !text.contains("token-value"),
                "{text}"
            );
        }
        assert_eq!(s.public_view()["principalTags"]["x509Subject/CN"], "client");
        assert_eq!(s.public_view()["sourceIdentity"], "CN=client");
    }
}
