//! The retry policy of one CreateSession call: what is worth another attempt, how long to wait
//! before it (jittered exponential backoff), and the one time limit for the whole call.
//!
//! Each attempt (`attempt.rs`) is signed afresh; this module only decides whether and when there is
//! another one.

use super::attempt::{Prepared, request_body};
use super::{Client, Credentials, Error, SessionRequest};
use crate::signer::Identity;
use std::time::{Duration, Instant};

impl Error {
    /// True when another attempt may succeed: 5xx, throttling, connection failures and timeouts.
    pub(super) fn retryable(&self) -> bool {
        match self {
            Error::Service {
                status, error_type, ..
            } => *status >= 500 || *status == 429 || error_type == "ThrottlingException",
            Error::Transport { transient, .. } => *transient,
            _ => false,
        }
    }
}

impl Client {
    /// The limit for a whole call: every attempt its full `timeout`, plus the longest the waits
    /// between them can be.
    pub fn call_limit(&self) -> Duration {
        self.timeout.saturating_mul(self.max_attempts)
            + max_total_backoff(self.backoff_base, self.max_attempts)
    }

    /// Calls CreateSession with `identity`, retrying 5xx, throttling and connection failures with
    /// jittered exponential backoff. Every attempt is signed afresh (new date, new signature).
    /// Each attempt ends after `timeout` (connect, TLS, request and the complete answer), and the
    /// whole call after [`Client::call_limit`]; a signing device that does not answer is not
    /// interrupted. `debug`, when given, receives the canonical request, the string to sign and the
    /// response status.
    pub fn create_session(
        &self,
        req: &SessionRequest,
        identity: &Identity,
        debug: Option<&dyn Fn(&str)>,
    ) -> Result<Credentials, Error> {
        let deadline = Instant::now() + self.call_limit();
        let query = vec![
            ("profileArn".to_string(), req.profile_arn.clone()),
            ("roleArn".to_string(), req.role_arn.clone()),
            ("trustAnchorArn".to_string(), req.trust_anchor_arn.clone()),
        ];
        let prepared = Prepared {
            url: self.endpoint.sessions_url(&query),
            query,
            body: request_body(req),
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.attempt(req, identity, &prepared, attempt, deadline, debug);
            match result {
                Ok(c) => return Ok(c),
                Err(e) if attempt < self.max_attempts && e.retryable() => {
                    let delay = backoff(self.backoff_base, attempt);
                    if Instant::now() + delay >= deadline {
                        return Err(e);
                    }
                    if let Some(d) = debug {
                        d(&format!(
                            "attempt {attempt} failed ({e}); retrying in {} ms",
                            delay.as_millis()
                        ));
                    }
                    std::thread::sleep(delay);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// `base · 2^(attempt-1)`, jittered by ±50% so that many servers do not retry in step.
fn backoff(base: Duration, attempt: u32) -> Duration {
    // 53 random bits give a uniform fraction in [0, 1); without a random source (never on Linux
    // after boot) the nominal wait is used.
    let unit = getrandom::u64().map_or(0.5, |r| (r >> 11) as f64 / (1u64 << 53) as f64);
    let factor = 0.5 + unit;
    nominal_backoff(base, attempt).mul_f64(factor)
}

fn nominal_backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(1u32 << (attempt.saturating_sub(1)).min(10))
}

/// The longest all waits between `attempts` attempts can add up to: 1.5 × (base + 2·base + …).
/// With the defaults (200 ms, 3 attempts) 900 ms.
fn max_total_backoff(base: Duration, attempts: u32) -> Duration {
    (1..attempts)
        .map(|a| nominal_backoff(base, a).mul_f64(1.5))
        .fold(Duration::ZERO, Duration::saturating_add)
}

#[cfg(test)]
mod tests {
    use super::super::{ClientOptions, Endpoint};
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_bounds() {
        let base = Duration::from_millis(200);
        for attempt in 1..=3 {
            let nominal = 200u128 << (attempt - 1);
            for _ in 0..50 {
                let d = backoff(base, attempt).as_millis();
                assert!(d >= nominal / 2 && d <= nominal * 3 / 2, "{attempt}: {d}");
            }
        }
    }

    #[test]
    fn call_limit_is_all_attempts_plus_the_longest_backoff() {
        let base = Duration::from_millis(200);
        assert_eq!(max_total_backoff(base, 1), Duration::ZERO);
        assert_eq!(max_total_backoff(base, 3), Duration::from_millis(900));
        let c = Client::new(
            Endpoint::parse("http://127.0.0.1:9").unwrap(),
            &ClientOptions {
                timeout: Duration::from_secs(5),
                ..ClientOptions::default()
            },
        )
        .unwrap();
        assert_eq!(c.call_limit(), Duration::from_millis(15_900));
    }

    #[test]
    fn retry_classification_follows_status_and_error_type() {
        let svc = |status, t: &str| Error::Service {
            url: String::new(),
            status,
            error_type: t.into(),
            message: String::new(),
            attempts: 1,
        };
        assert!(svc(503, "").retryable());
        assert!(svc(500, "InternalServerException").retryable());
        assert!(svc(429, "").retryable());
        assert!(svc(400, "ThrottlingException").retryable());
        assert!(!svc(403, "AccessDeniedException").retryable());
        assert!(!svc(400, "ValidationException").retryable());
        assert!(
            !Error::MalformedResponse {
                reason: String::new()
            }
            .retryable()
        );
    }
}
