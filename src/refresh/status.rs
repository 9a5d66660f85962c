//! What the refresher tells about itself, for `agent status` and the metrics endpoint: the
//! certificate signing, the cached set's times, the refresh counts, the last failure and a
//! CreateSession latency histogram.
//!
//! Plain data, no secrets: the certificate's subject comes escaped for terminals, failure messages
//! are the secret-free texts the refresher logs (escaped too).

use std::time::Duration;
use time::OffsetDateTime;

/// The certificate of the identity signing the requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// Subject DN in RFC 4514 form, safe for terminals: control and bidirectional formatting
    /// characters are written as `\XX` escapes ([`crate::certs::Certificate::subject`]).
    pub subject: String,
    /// Serial number in base 10.
    pub serial: String,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

impl CertificateInfo {
    /// The fields of `cert`.
    pub fn of(cert: &crate::certs::Certificate) -> CertificateInfo {
        CertificateInfo {
            subject: cert.subject(),
            serial: cert.serial_decimal(),
            not_after: cert.not_after(),
        }
    }
}

/// Upper bounds (seconds) of the latency histogram's buckets: a CreateSession takes tens of
/// milliseconds on a good day, seconds through a slow token or TPM, and is cut off by the client's
/// timeout (30 s at most by default).
pub const LATENCY_BUCKETS: [f64; 9] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// A histogram of CreateSession wall times with the fixed buckets [`LATENCY_BUCKETS`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyHistogram {
    /// Observations per bucket (not cumulative); the last slot holds those above every bound.
    counts: [u64; LATENCY_BUCKETS.len() + 1],
    sum: f64,
}

impl LatencyHistogram {
    /// Records one duration.
    pub fn observe(&mut self, d: Duration) {
        let secs = d.as_secs_f64();
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|&le| secs <= le)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.counts[slot] += 1;
        self.sum += secs;
    }

    /// The number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The sum of the observations, in seconds.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Each bucket's upper bound with the number of observations at or below it (cumulative, as
    /// Prometheus counts them); the implicit `+Inf` bucket is [`LatencyHistogram::count`].
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        LATENCY_BUCKETS
            .iter()
            .zip(&self.counts)
            .scan(0u64, |total, (&le, &n)| {
                *total += n;
                Some((le, *total))
            })
    }
}

/// A snapshot of one refresher's state ([`super::Refresher::status`]).
#[derive(Debug, Clone, Default)]
pub struct RefreshStatus {
    /// The certificate of the identity signing (updated when it is rotated); `None` until an
    /// identity has been opened.
    pub certificate: Option<CertificateInfo>,
    /// When the cached set expires.
    pub expires_at: Option<OffsetDateTime>,
    /// When the cached set arrived.
    pub obtained_at: Option<OffsetDateTime>,
    /// When the last failed attempt was, and why (secret-free, escaped); kept after a success.
    pub last_failure: Option<(OffsetDateTime, String)>,
    /// Attempts that brought a new set.
    pub successes: u64,
    /// Attempts that failed (opening or reloading the identity, or CreateSession).
    pub failures: u64,
    /// CreateSession wall times of the attempts that reached it, successful or not.
    pub latency: LatencyHistogram,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_histogram_counts_each_duration_in_its_bucket_cumulatively() {
        let mut h = LatencyHistogram::default();
        assert_eq!(h.count(), 0);
        assert!(h.cumulative().all(|(_, n)| n == 0));
        for ms in [10, 50, 51, 700, 45_000] {
            h.observe(Duration::from_millis(ms));
        }
        assert_eq!(h.count(), 5);
        assert!((h.sum() - 45.811).abs() < 1e-9, "{}", h.sum());
        let buckets: Vec<(f64, u64)> = h.cumulative().collect();
        assert_eq!(
            buckets,
            vec![
                (0.05, 2),
                (0.1, 3),
                (0.25, 3),
                (0.5, 3),
                (1.0, 4),
                (2.5, 4),
                (5.0, 4),
                (10.0, 4),
                (30.0, 4),
            ]
        );
    }
}
