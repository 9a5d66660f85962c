//! CreateSession throttling like the service's: a token bucket per (certificate serial, source
//! address), by default 10 requests per second, and an optional bucket for all requests together
//! (an account's quota, for fleet tests). A request over either limit is answered 429
//! `ThrottlingException` by the server.
//!
//! Each bucket holds up to one second's worth of requests and refills continuously,
//! so a burst of `rate` requests passes and then `rate` per second. The serial is the one the
//! request's `Authorization` header claims: throttling comes before verification, as at the
//! service's front door, so refused requests use up the quota too. Pure apart from its lock: the
//! caller passes the time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// The service's default CreateSession quota per certificate and source address.
pub const DEFAULT_PER_SECOND: u32 = 10;
/// The highest rate accepted.
pub const MAX_PER_SECOND: u32 = 1_000_000;
/// Most (serial, address) buckets tracked; past it, full buckets (which behave like new ones) are
/// dropped, and if none is full, all are.
const MAX_BUCKETS: usize = 100_000;

/// The `[throttle]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// Whether CreateSession is throttled at all.
    pub enabled: bool,
    /// Requests per second per (certificate serial, source address).
    pub create_session_per_second: u32,
    /// Requests per second for all clients together; `None` for no such limit.
    pub total_per_second: Option<u32>,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            enabled: true,
            create_session_per_second: DEFAULT_PER_SECOND,
            total_per_second: None,
        }
    }
}

/// Checks a rate from the config or the command line: 1..[`MAX_PER_SECOND`] requests per second.
pub fn check_rate(what: &str, rate: u64) -> Result<u32, String> {
    match u32::try_from(rate) {
        Ok(r) if (1..=MAX_PER_SECOND).contains(&r) => Ok(r),
        _ => Err(format!(
            "{what}: {rate} is outside 1..{MAX_PER_SECOND} requests per second"
        )),
    }
}

/// Which limit a throttled request exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    /// The per-(certificate, address) limit.
    PerCertificate,
    /// The limit for all requests together.
    Total,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(rate: u32, now: Instant) -> Bucket {
        Bucket {
            tokens: capacity(rate),
            last: now,
        }
    }

    fn refill(&mut self, rate: u32, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * f64::from(rate)).min(capacity(rate));
        self.last = now;
    }
}

/// One second's worth.
impl Bucket {
    /// At least one request's worth, give or take floating-point rounding of the refill.
    fn has_one(&self) -> bool {
        self.tokens + 1e-9 >= 1.0
    }
}

fn capacity(rate: u32) -> f64 {
    f64::from(rate)
}

/// The buckets of one server.
pub struct Throttle {
    settings: ThrottleSettings,
    state: Mutex<State>,
}

struct State {
    per_key: HashMap<(String, IpAddr), Bucket>,
    total: Option<Bucket>,
}

impl Throttle {
    /// Buckets for `settings`, all full.
    pub fn new(settings: ThrottleSettings) -> Throttle {
        Throttle {
            settings,
            state: Mutex::new(State {
                per_key: HashMap::new(),
                total: None,
            }),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &ThrottleSettings {
        &self.settings
    }

    /// Takes one request from the buckets of `serial` (as claimed; "" when none could be read)
    /// and `addr` and from the total bucket, or takes nothing and says which limit is exceeded.
    pub fn admit(&self, serial: &str, addr: IpAddr, now: Instant) -> Result<(), Exceeded> {
        if !self.settings.enabled {
            return Ok(());
        }
        let per = self.settings.create_session_per_second;
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let State { per_key, total } = &mut *state;
        if per_key.len() >= MAX_BUCKETS && !per_key.contains_key(&(serial.to_string(), addr)) {
            per_key.retain(|_, b| {
                b.refill(per, now);
                b.tokens < capacity(per)
            });
            if per_key.len() >= MAX_BUCKETS {
                per_key.clear();
            }
        }
        let bucket = per_key
            .entry((serial.to_string(), addr))
            .or_insert_with(|| Bucket::full(per, now));
        bucket.refill(per, now);
        if !bucket.has_one() {
            return Err(Exceeded::PerCertificate);
        }
        if let Some(rate) = self.settings.total_per_second {
            let t = total.get_or_insert_with(|| Bucket::full(rate, now));
            t.refill(rate, now);
            if !t.has_one() {
                return Err(Exceeded::Total);
            }
            t.tokens = (t.tokens - 1.0).max(0.0);
        }
        bucket.tokens = (bucket.tokens - 1.0).max(0.0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

    fn throttle(per: u32, total: Option<u32>) -> Throttle {
        Throttle::new(ThrottleSettings {
            enabled: true,
            create_session_per_second: per,
            total_per_second: total,
        })
    }

    fn admitted(t: &Throttle, serial: &str, addr: IpAddr, now: Instant, n: usize) -> usize {
        (0..n)
            .filter(|_| t.admit(serial, addr, now).is_ok())
            .count()
    }

    #[test]
    fn a_burst_of_one_seconds_worth_passes_then_the_rate() {
        let t = throttle(10, None);
        let t0 = Instant::now();
        assert_eq!(admitted(&t, "1", A, t0, 50), 10);
        assert_eq!(t.admit("1", A, t0), Err(Exceeded::PerCertificate));
        // 0.25 s later two and a half requests' worth has refilled.
        assert_eq!(admitted(&t, "1", A, t0 + Duration::from_millis(250), 50), 2);
        // A full second of quiet refills the bucket, but not beyond one second's worth.
        assert_eq!(admitted(&t, "1", A, t0 + Duration::from_secs(5), 50), 10);
    }

    #[test]
    fn buckets_are_per_serial_and_per_address() {
        let t = throttle(2, None);
        let t0 = Instant::now();
        assert_eq!(admitted(&t, "1", A, t0, 5), 2);
        assert_eq!(admitted(&t, "2", A, t0, 5), 2);
        assert_eq!(admitted(&t, "1", B, t0, 5), 2);
    }

    #[test]
    fn the_total_limit_spans_certificates_and_costs_no_per_certificate_quota() {
        let t = throttle(10, Some(3));
        let t0 = Instant::now();
        assert_eq!(admitted(&t, "1", A, t0, 2), 2);
        assert_eq!(admitted(&t, "2", A, t0, 1), 1);
        assert_eq!(t.admit("3", A, t0), Err(Exceeded::Total));
        // Refused by the total, "3" kept its own quota: after the total refills it passes.
        assert_eq!(admitted(&t, "3", A, t0 + Duration::from_secs(1), 10), 3);
    }

    #[test]
    fn a_rate_of_one_admits_one_request_per_second() {
        let t = throttle(1, None);
        let t0 = Instant::now();
        assert_eq!(admitted(&t, "1", A, t0, 3), 1);
        assert_eq!(admitted(&t, "1", A, t0 + Duration::from_millis(900), 3), 0);
        assert_eq!(admitted(&t, "1", A, t0 + Duration::from_millis(1000), 3), 1);
    }

    #[test]
    fn disabled_admits_everything() {
        let t = Throttle::new(ThrottleSettings {
            enabled: false,
            ..ThrottleSettings::default()
        });
        assert_eq!(admitted(&t, "1", A, Instant::now(), 1000), 1000);
    }

    #[test]
    fn rates_are_checked() {
        assert_eq!(check_rate("r", 10), Ok(10));
        assert_eq!(check_rate("r", 1_000_000), Ok(1_000_000));
        for bad in [0, 1_000_001, u64::MAX] {
            assert!(check_rate("r", bad).is_err(), "{bad}");
        }
    }
}
