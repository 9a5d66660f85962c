//! ListSubjects and GetSubject: the end-entity certificates CreateSession granted sessions to.
//!
//! The server reports each granted session ([`super::Control::record_subject`]); a subject is
//! one certificate, its id the UUID CreateSession's `subjectArn` carries (derived from the
//! serial). Only granted sessions are recorded, so `failed` is always false; the emulator has no
//! instance properties, so `instanceProperties` is empty. At most [`SUBJECTS_KEPT`] are kept,
//! the least recently seen dropped first; ListSubjects lists them least recently seen first.

use serde_json::{Value, json};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::state::{SUBJECTS_KEPT, State, Subject, SubjectCredential, pem};
use super::{Answer, ApiError, Query, check_id, page, timestamp};

/// A session CreateSession granted, as the server reports it.
#[derive(Debug, Clone)]
pub struct SubjectSeen {
    /// The subject's UUID, as in the `subjectArn` CreateSession returned.
    pub subject_id: String,
    /// The trust anchor the session was granted under (the subject ARN's partition and account).
    pub trust_anchor_arn: String,
    /// The end-entity certificate (DER).
    pub leaf_der: Vec<u8>,
    /// When the session was granted.
    pub seen_at: OffsetDateTime,
}

fn summary(s: &Subject) -> Value {
    json!({
        "subjectArn": s.arn,
        "subjectId": s.id,
        "enabled": s.enabled,
        "x509Subject": s.x509_subject,
        "lastSeenAt": s.last_seen_at,
        "createdAt": s.created_at,
        "updatedAt": s.updated_at,
    })
}

fn detail(s: &Subject) -> Value {
    let mut v = summary(s);
    if let Some(o) = v.as_object_mut() {
        let credentials: Vec<Value> = s
            .credentials
            .iter()
            .map(|c| {
                json!({
                    "seenAt": c.seen_at,
                    "serialNumber": c.serial_number,
                    "issuer": c.issuer,
                    "enabled": c.enabled,
                    "x509CertificateData": c.x509_certificate_data,
                    "failed": c.failed,
                })
            })
            .collect();
        o.insert("credentials".into(), Value::Array(credentials));
        o.insert("instanceProperties".into(), json!([]));
    }
    v
}

pub(super) fn list(s: &State, q: &Query) -> Answer {
    page(s.subjects.iter().map(summary).collect(), "subjects", q)
}

pub(super) fn get(s: &State, id: &str) -> Answer {
    check_id(id)?;
    let subject = s
        .subjects
        .iter()
        .find(|x| x.id == id)
        .ok_or_else(|| ApiError::not_found("subject", id))?;
    Ok((200, json!({ "subject": detail(subject) })))
}

/// The certificate's subject, issuer and serial (base 10) as text; empty when it does not
/// parse (the verifier parsed it before granting, so it does).
fn names(der: &[u8]) -> (String, String, String) {
    match X509Certificate::from_der(der) {
        Ok((_, cert)) => (
            crate::server::bounded_text(&cert.subject().to_string()),
            crate::server::bounded_text(&cert.issuer().to_string()),
            cert.tbs_certificate.serial.to_string(),
        ),
        Err(_) => (String::new(), String::new(), String::new()),
    }
}

/// Records `seen`; returns whether the subject is new. A subject seen again moves to the end
/// (most recently seen); past [`SUBJECTS_KEPT`] the first goes.
pub(super) fn record(s: &mut State, region: &str, seen: SubjectSeen) -> bool {
    let now = timestamp(seen.seen_at);
    if let Some(i) = s.subjects.iter().position(|x| x.id == seen.subject_id) {
        let mut subject = s.subjects.remove(i);
        subject.last_seen_at = now.clone();
        subject.updated_at = now.clone();
        for c in &mut subject.credentials {
            c.seen_at = now.clone();
        }
        s.subjects.push(subject);
        return false;
    }
    let field = |i: usize| seen.trust_anchor_arn.split(':').nth(i).unwrap_or("");
    let (x509_subject, issuer, serial_number) = names(&seen.leaf_der);
    s.subjects.push(Subject {
        arn: format!(
            "arn:{}:rolesanywhere:{region}:{}:subject/{}",
            field(1),
            field(4),
            seen.subject_id
        ),
        id: seen.subject_id,
        x509_subject,
        enabled: true,
        created_at: now.clone(),
        updated_at: now.clone(),
        last_seen_at: now.clone(),
        credentials: vec![SubjectCredential {
            seen_at: now,
            serial_number,
            issuer,
            enabled: true,
            x509_certificate_data: pem("CERTIFICATE", &seen.leaf_der),
            failed: false,
        }],
    });
    if s.subjects.len() > SUBJECTS_KEPT {
        let excess = s.subjects.len() - SUBJECTS_KEPT;
        s.subjects.drain(..excess);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(id: &str, at: i64) -> SubjectSeen {
        SubjectSeen {
            subject_id: id.into(),
            trust_anchor_arn: "arn:aws:rolesanywhere:us-east-1:123456789012:trust-anchor/t".into(),
            leaf_der: b"not a certificate".to_vec(),
            seen_at: OffsetDateTime::from_unix_timestamp(at).expect("time"),
        }
    }

    #[test]
    fn a_subject_seen_again_keeps_its_creation_and_moves_last() {
        let mut s = State::default();
        let a = "aaaaaaaa-0000-4000-8000-000000000000";
        let b = "bbbbbbbb-0000-4000-8000-000000000000";
        assert!(record(&mut s, "us-east-1", seen(a, 0)));
        assert!(record(&mut s, "us-east-1", seen(b, 10)));
        assert!(!record(&mut s, "us-east-1", seen(a, 20)));
        let ids: Vec<&str> = s.subjects.iter().map(|x| x.id.as_str()).collect();
        assert_eq!(ids, [b, a]);
        let (_, v) = get(&s, a).expect("get");
        let subject = &v["subject"];
        assert_eq!(subject["createdAt"], "1970-01-01T00:00:00Z");
        assert_eq!(subject["lastSeenAt"], "1970-01-01T00:00:20Z");
        assert_eq!(subject["credentials"][0]["seenAt"], "1970-01-01T00:00:20Z");
        assert_eq!(
            subject["subjectArn"],
            format!("arn:aws:rolesanywhere:us-east-1:123456789012:subject/{a}")
        );
        // What does not parse is recorded without names rather than refused.
        assert_eq!(subject["x509Subject"], "");
        assert_eq!(subject["instanceProperties"], json!([]));
    }

    #[test]
    fn the_least_recently_seen_subject_goes_past_the_cap() {
        let mut s = State::default();
        let id = |i: usize| format!("{i:08x}-0000-4000-8000-000000000000");
        for i in 0..SUBJECTS_KEPT {
            record(&mut s, "us-east-1", seen(&id(i), 0));
        }
        // Subject 0 is seen again, so subject 1 is now the least recently seen.
        record(&mut s, "us-east-1", seen(&id(0), 1));
        record(&mut s, "us-east-1", seen(&id(SUBJECTS_KEPT), 2));
        assert_eq!(s.subjects.len(), SUBJECTS_KEPT);
        assert!(get(&s, &id(0)).is_ok());
        let e = get(&s, &id(1)).expect_err("dropped");
        assert_eq!(e.kind, "ResourceNotFoundException");
        assert_eq!(
            get(&s, "x").expect_err("malformed").kind,
            "ValidationException"
        );
    }
}
