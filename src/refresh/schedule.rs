//! When to call CreateSession next, and whether a held set may still be handed out.
//!
//! Pure: time is an input (`now`, UTC), randomness comes from a [`Jitter`] the caller seeds; no
//! clock reads, no sleeping, no I/O. The refresher's thread reads the clock and sleeps; the unit
//! tests below drive the same functions with a simulated clock.
//!
//! - Proactive refresh at [`Policy::refresh_fraction`] of the issued lifetime (½), jittered by
//!   ±[`Policy::jitter_fraction`] of it (±5 %), so a fleet restarted together spreads out: with a
//!   1 h session the next set is fetched 27–33 min after the last, when at least 27 min remain.
//! - Failures back off exponentially with ±50 % jitter, counted from the failed attempt's end (the
//!   caller passes that time): from [`Policy::transient_base`] (2 s) for 5xx,
//!   throttling, network and device errors, from [`Policy::refused_base`] (30 s) for refusals and
//!   configuration errors (AccessDenied, validation: retrying soon changes nothing). Both are capped
//!   at a quarter of the lifetime and at most [`Policy::max_backoff`] (5 min), so a service that
//!   comes back is used again promptly; and no two attempts are ever closer than
//!   [`Policy::min_gap`] (2 s), whatever fails.
//! - A held set is handed out until [`margin`] before its expiry (1/20 of its lifetime, between
//!   5 s and 60 s): never an expired one, nor one that would expire in transit.

use std::time::Duration;
use time::OffsetDateTime;

/// The tunables of the schedule. [`Policy::default`] is what `serve` and `update` use.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Fraction of a set's lifetime after which the next one is fetched.
    pub refresh_fraction: f64,
    /// Jitter of the refresh time, ± this fraction of the lifetime.
    pub jitter_fraction: f64,
    /// Least time between the starts of two attempts.
    pub min_gap: Duration,
    /// First backoff after a transient failure (5xx, throttling, network, device).
    pub transient_base: Duration,
    /// First backoff after a refusal (4xx such as AccessDenied or validation) or a configuration
    /// error.
    pub refused_base: Duration,
    /// Upper bound of every backoff (further bounded by a quarter of the lifetime).
    pub max_backoff: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            refresh_fraction: 0.5,
            jitter_fraction: 0.05,
            min_gap: Duration::from_secs(2),
            transient_base: Duration::from_secs(2),
            refused_base: Duration::from_secs(30),
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// How an attempt failed, as far as the schedule cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Another attempt soon may succeed: 5xx, throttling, network, a device that went away.
    Transient,
    /// The service refused (4xx) or the configuration is wrong: retrying soon changes nothing.
    Refused,
}

/// A source of uniform numbers in `[0, 1)`: SplitMix64, seeded by the caller (tests) or from the
/// system's random source.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    /// A generator with this seed (the same seed gives the same sequence).
    pub fn seeded(seed: u64) -> Jitter {
        Jitter(seed)
    }

    /// A generator seeded from the system's random source (the clock when that fails: jitter needs
    /// spread, not secrecy).
    pub fn from_entropy() -> Jitter {
        let mut b = [0u8; 8];
        if getrandom::fill(&mut b).is_err() {
            let t = OffsetDateTime::now_utc().unix_timestamp_nanos();
            b = (t as u64).to_le_bytes();
        }
        Jitter(u64::from_le_bytes(b))
    }

    /// The next number in `[0, 1)`.
    pub fn next_unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // The top 53 bits as a fraction: exactly representable, uniform, below 1.
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// How long before its expiry a set stops being handed out: 1/20 of its lifetime, at least 5 s
/// (clock skew, the time a response spends in transit), at most 60 s (the SDKs refresh well
/// before that on their own).
pub fn margin(lifetime: Duration) -> Duration {
    (lifetime / 20).clamp(Duration::from_secs(5), Duration::from_secs(60))
}

/// True when a set expiring at `expires` may be handed out at `now`: not expired and not within
/// [`margin`] of it.
pub fn usable(now: OffsetDateTime, obtained: OffsetDateTime, expires: OffsetDateTime) -> bool {
    now + margin(lifetime(obtained, expires)) < expires
}

/// `expires - obtained`, or zero when that is negative.
pub fn lifetime(obtained: OffsetDateTime, expires: OffsetDateTime) -> Duration {
    Duration::try_from(expires - obtained).unwrap_or(Duration::ZERO)
}

/// `t + d`, saturating far in the future instead of overflowing.
fn plus(t: OffsetDateTime, d: Duration) -> OffsetDateTime {
    t.checked_add(time::Duration::try_from(d).unwrap_or(time::Duration::MAX))
        .unwrap_or(t)
}

impl Policy {
    /// When to fetch the next set after one obtained at `obtained` that expires at `expires`:
    /// [`Policy::refresh_fraction`] of the lifetime ± [`Policy::jitter_fraction`] of it (`u` in
    /// `[0, 1)` picks where), never sooner than [`Policy::min_gap`] after `obtained` and never
    /// later than [`margin`] before the expiry.
    pub fn refresh_at(
        &self,
        obtained: OffsetDateTime,
        expires: OffsetDateTime,
        u: f64,
    ) -> OffsetDateTime {
        let life = lifetime(obtained, expires);
        let fraction = self.refresh_fraction + self.jitter_fraction * (2.0 * u - 1.0);
        let after = life.mul_f64(fraction.clamp(0.0, 1.0));
        let latest = life.saturating_sub(margin(life));
        plus(obtained, after.min(latest).max(self.min_gap))
    }

    /// The longest backoff for credentials of this lifetime: a quarter of it, at most
    /// [`Policy::max_backoff`], at least [`Policy::min_gap`].
    pub fn cap(&self, lifetime: Duration) -> Duration {
        (lifetime / 4).min(self.max_backoff).max(self.min_gap)
    }

    /// The wait after the `failures`-th failure in a row (1 for the first) of `kind`: the kind's
    /// base doubled for each earlier failure, capped by [`Policy::cap`], then jittered to between
    /// half and one and a half times that (`u` in `[0, 1)`), still within the cap and never below
    /// [`Policy::min_gap`]. Centred jitter spreads a throttled fleet wider than jitter that only
    /// shortens: in `bench/fleet`'s model of 200 hosts sharing 10 CreateSession/s, every host held
    /// credentials after at most 45 s instead of 62 s, with a fifth fewer throttled attempts.
    pub fn backoff(
        &self,
        kind: FailureKind,
        failures: u32,
        lifetime: Duration,
        u: f64,
    ) -> Duration {
        let base = match kind {
            FailureKind::Transient => self.transient_base,
            FailureKind::Refused => self.refused_base,
        };
        let doublings = failures.saturating_sub(1).min(30);
        let cap = self.cap(lifetime);
        let nominal = base.saturating_mul(1u32 << doublings).min(cap);
        nominal
            .mul_f64(0.5 + u.clamp(0.0, 1.0))
            .min(cap)
            .max(self.min_gap)
    }
}

/// What the refresher's thread plans with: the state of the schedule between attempts.
#[derive(Debug, Clone)]
pub struct Plan {
    policy: Policy,
    /// The lifetime asked for (`durationSeconds`): the cap's basis until a set says otherwise.
    requested: Duration,
    /// The lifetime of the last set obtained.
    lifetime: Option<Duration>,
    /// Failures since the last success.
    failures: u32,
    /// When the last attempt started.
    last_attempt: Option<OffsetDateTime>,
}

impl Plan {
    /// A plan for sessions of `requested` lifetime.
    pub fn new(policy: Policy, requested: Duration) -> Plan {
        Plan {
            policy,
            requested,
            lifetime: None,
            failures: 0,
            last_attempt: None,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The earliest an attempt may start: [`Policy::min_gap`] after the last one.
    pub fn earliest(&self) -> Option<OffsetDateTime> {
        self.last_attempt.map(|t| plus(t, self.policy.min_gap))
    }

    /// Records that an attempt starts at `now`.
    pub fn attempt(&mut self, now: OffsetDateTime) {
        self.last_attempt = Some(now);
    }

    /// After a success at `now` that gave a set expiring at `expires`: when to refresh.
    pub fn succeeded(
        &mut self,
        now: OffsetDateTime,
        expires: OffsetDateTime,
        jitter: &mut Jitter,
    ) -> OffsetDateTime {
        self.failures = 0;
        self.lifetime = Some(lifetime(now, expires));
        self.not_before_gap(self.policy.refresh_at(now, expires, jitter.next_unit()))
    }

    /// After a failure of `kind` at `now`: when to try again.
    pub fn failed(
        &mut self,
        now: OffsetDateTime,
        kind: FailureKind,
        jitter: &mut Jitter,
    ) -> OffsetDateTime {
        self.failures = self.failures.saturating_add(1);
        let life = self.lifetime.unwrap_or(self.requested);
        let wait = self
            .policy
            .backoff(kind, self.failures, life, jitter.next_unit());
        self.not_before_gap(plus(now, wait))
    }

    fn not_before_gap(&self, t: OffsetDateTime) -> OffsetDateTime {
        match self.earliest() {
            Some(e) if e > t => e,
            _ => t,
        }
    }
}

/// True when sessions this short make SDKs refresh on every call: botocore refreshes credentials
/// that expire within 15 minutes before each request.
pub fn sdks_refresh_every_call(duration: Duration) -> bool {
    duration <= Duration::from_secs(15 * 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2030-01-01 00:00:00 UTC);

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn at(s: f64) -> OffsetDateTime {
        T0 + time::Duration::seconds_f64(s)
    }

    fn since_t0(t: OffsetDateTime) -> f64 {
        (t - T0).as_seconds_f64()
    }

    #[test]
    fn jitter_is_uniform_in_unit_interval_and_reproducible() {
        let mut a = Jitter::seeded(7);
        let mut b = Jitter::seeded(7);
        let xs: Vec<f64> = (0..10_000).map(|_| a.next_unit()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        assert_eq!(
            xs[..5],
            (0..5).map(|_| b.next_unit()).collect::<Vec<_>>()[..]
        );
        // Ten bins each get about a tenth.
        let mut bins = [0u32; 10];
        for x in &xs {
            bins[(x * 10.0) as usize] += 1;
        }
        assert!(bins.iter().all(|&n| (850..1150).contains(&n)), "{bins:?}");
        assert_ne!(Jitter::seeded(1).next_unit(), Jitter::seeded(2).next_unit());
    }

    /// The promise: with a 1 h session a client never gets a set with under 25 minutes left
    /// while the service is healthy, and a fleet spreads its refreshes over minutes.
    #[test]
    fn one_hour_sessions_refresh_at_half_life_within_the_jitter() {
        let p = Policy::default();
        let mut j = Jitter::seeded(42);
        let expires = at(3600.0);
        let (mut lo, mut hi) = (f64::MAX, f64::MIN);
        for _ in 0..10_000 {
            let t = since_t0(p.refresh_at(T0, expires, j.next_unit()));
            assert!((1620.0..=1980.0).contains(&t), "{t}");
            assert!(3600.0 - t >= 25.0 * 60.0, "{t}");
            lo = lo.min(t);
            hi = hi.max(t);
        }
        // The jitter is used, not collapsed: a fleet spreads over most of the ±3 min window.
        assert!(lo < 1650.0 && hi > 1950.0, "{lo}..{hi}");
        // The edges of u.
        assert_eq!(since_t0(p.refresh_at(T0, expires, 0.0)), 1620.0);
        assert_eq!(since_t0(p.refresh_at(T0, expires, 0.5)), 1800.0);
    }

    #[test]
    fn refresh_never_comes_later_than_the_margin_nor_sooner_than_the_gap() {
        let p = Policy {
            refresh_fraction: 0.99,
            jitter_fraction: 0.2,
            ..Policy::default()
        };
        let mut j = Jitter::seeded(3);
        for life in [1u64, 3, 10, 62, 900, 3600, 43200] {
            let expires = at(life as f64);
            for _ in 0..1000 {
                let t = since_t0(p.refresh_at(T0, expires, j.next_unit()));
                assert!(t >= 2.0, "{life}: {t}");
                let m = margin(secs(life)).as_secs_f64();
                assert!(t <= (life as f64 - m).max(2.0), "{life}: {t}");
            }
        }
    }

    #[test]
    fn backoff_doubles_from_the_kind_base_up_to_the_cap() {
        let p = Policy::default();
        let hour = secs(3600);
        // u = 0.5: the nominal wait, the middle of the jitter.
        let nominal: Vec<u64> = (1..=10)
            .map(|n| p.backoff(FailureKind::Transient, n, hour, 0.5).as_secs())
            .collect();
        assert_eq!(nominal, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        let refused: Vec<u64> = (1..=6)
            .map(|n| p.backoff(FailureKind::Refused, n, hour, 0.5).as_secs())
            .collect();
        assert_eq!(refused, [30, 60, 120, 240, 300, 300]);
        // The cap scales with the lifetime: a quarter of it, at most 5 min, at least the gap.
        assert_eq!(p.cap(secs(64)), secs(16));
        assert_eq!(p.cap(secs(900)), secs(225));
        assert_eq!(p.cap(secs(43200)), secs(300));
        assert_eq!(p.cap(secs(4)), secs(2));
        assert_eq!(p.backoff(FailureKind::Refused, 1, secs(64), 0.5), secs(16));
        // Jitter spreads each wait over half to one and a half times the nominal one, within the
        // cap and never below the gap.
        for n in 1..40 {
            for u in [0.0, 0.3, 0.5, 0.8, 0.999] {
                for kind in [FailureKind::Transient, FailureKind::Refused] {
                    let b = p.backoff(kind, n, hour, u);
                    let nominal = p.backoff(kind, n, hour, 0.5);
                    assert!(
                        b >= nominal / 2 && b <= nominal.mul_f64(1.5) && b <= p.cap(hour),
                        "{n} {u} {b:?}"
                    );
                    assert!(b >= secs(2), "{n} {u} {b:?}");
                }
            }
        }
        // Both sides of the jitter are used below the cap.
        let low = p.backoff(FailureKind::Transient, 3, hour, 0.0);
        let high = p.backoff(FailureKind::Transient, 3, hour, 0.999);
        assert_eq!((low.as_secs(), high.as_secs_f64().round()), (4, 12.0));
    }

    /// A simulated refresher: `outcome(t)` says how an attempt at time `t` (seconds since T0) ends;
    /// success gives a set of `life` seconds. Returns the attempt times and, for every second, what
    /// the refresher would hand out (the expiry of a usable set, or nothing).
    fn simulate(
        life: u64,
        seed: u64,
        until: f64,
        outcome: impl Fn(f64) -> Option<FailureKind>,
    ) -> (Vec<f64>, Vec<(f64, Option<f64>)>) {
        let mut plan = Plan::new(Policy::default(), secs(life));
        let mut j = Jitter::seeded(seed);
        let mut attempts = Vec::new();
        let mut held: Option<(f64, f64)> = None;
        let mut handed = Vec::new();
        let mut next: f64 = 0.0;
        let mut clock = 0.0;
        while clock < until {
            // Answer reads every second up to the next attempt.
            while clock < next.min(until) {
                let out = held
                    .filter(|(o, e)| usable(at(clock), at(*o), at(*e)))
                    .map(|(_, e)| e);
                handed.push((clock, out));
                clock += 1.0;
            }
            if next >= until {
                break;
            }
            let now = at(next);
            if let Some(e) = plan.earliest() {
                assert!(now >= e, "attempt at {next} before the gap ends");
            }
            plan.attempt(now);
            attempts.push(next);
            next = match outcome(next) {
                None => {
                    held = Some((next, next + life as f64));
                    since_t0(plan.succeeded(now, at(next + life as f64), &mut j))
                }
                Some(kind) => since_t0(plan.failed(now, kind, &mut j)),
            };
        }
        (attempts, handed)
    }

    fn min_gap(attempts: &[f64]) -> f64 {
        attempts
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold(f64::MAX, f64::min)
    }

    #[test]
    fn every_failure_pattern_keeps_one_attempt_per_two_seconds_and_never_hands_out_expired() {
        for seed in 0..200u64 {
            for life in [62u64, 900, 3600] {
                // Failures in a pseudo-random pattern of both kinds, some long outages.
                let pattern = move |t: f64| {
                    let x = Jitter::seeded(seed ^ (t as u64).wrapping_mul(31)).next_unit();
                    let outage = ((t as u64 / 200) + seed).is_multiple_of(3);
                    if outage || x < 0.3 {
                        Some(FailureKind::Transient)
                    } else if x < 0.4 {
                        Some(FailureKind::Refused)
                    } else {
                        None
                    }
                };
                let (attempts, handed) = simulate(life, seed, 4.0 * life as f64, pattern);
                assert!(min_gap(&attempts) >= 2.0 - 1e-9, "{seed} {life}");
                let cap = Policy::default().cap(secs(life)).as_secs_f64();
                for w in attempts.windows(2) {
                    // After a failure the next attempt comes within the cap.
                    if pattern(w[0]).is_some() {
                        assert!(w[1] - w[0] <= cap + 1e-9, "{seed} {life} {w:?}");
                    }
                }
                for (t, out) in handed {
                    if let Some(e) = out {
                        assert!(e - t >= margin(secs(life)).as_secs_f64() - 1e-9);
                    }
                }
            }
        }
    }

    #[test]
    fn healthy_service_is_called_once_per_half_life_and_always_has_a_fresh_set() {
        let (attempts, handed) = simulate(3600, 9, 10.0 * 3600.0, |_| None);
        // 10 h of 1 h sessions at half-life: about 20 calls.
        assert!((19..=22).contains(&attempts.len()), "{}", attempts.len());
        for w in attempts.windows(2) {
            assert!((1620.0..=1980.0).contains(&(w[1] - w[0])), "{w:?}");
        }
        for (t, out) in handed {
            let left = out.expect("a set at every moment") - t;
            assert!(left >= 25.0 * 60.0, "{t}: {left} s left");
        }
    }

    #[test]
    fn outage_backs_off_to_the_cap_then_recovers_promptly() {
        // 1 h sets; the service is down from 1000 s to 2.5 h.
        let down = |t: f64| {
            (1000.0..9000.0)
                .contains(&t)
                .then_some(FailureKind::Transient)
        };
        let (attempts, handed) = simulate(3600, 5, 12000.0, down);
        let during: Vec<f64> = attempts
            .iter()
            .copied()
            .filter(|t| (1000.0..9000.0).contains(t))
            .collect();
        // 2, 4, … 256, then every 150–300 s: far fewer than one per 2 s.
        assert!(during.len() < 60, "{}", during.len());
        let recovered = attempts.iter().copied().find(|&t| t >= 9000.0).unwrap();
        assert!(recovered - 9000.0 <= 300.0, "{recovered}");
        // The last good set (from before 1000 s, expiring before 4600 s) was handed out until its
        // margin and nothing after it until recovery.
        let gap: Vec<f64> = handed
            .iter()
            .filter(|(_, o)| o.is_none())
            .map(|(t, _)| *t)
            .collect();
        assert!(
            gap.first().is_some_and(|&t| t > 3000.0 && t < 4600.0),
            "{gap:?}"
        );
        assert!(gap.last().is_some_and(|&t| t < recovered + 1.0));
    }

    #[test]
    fn refusals_wait_longer_than_transient_failures() {
        let count = |kind| {
            simulate(3600, 1, 1800.0, move |t| (t >= 0.0).then_some(kind))
                .0
                .len()
        };
        let (transient, refused) = (count(FailureKind::Transient), count(FailureKind::Refused));
        assert!(refused < transient, "{refused} vs {transient}");
    }

    #[test]
    fn margin_and_usability() {
        assert_eq!(margin(secs(3600)), secs(60));
        assert_eq!(margin(secs(900)), secs(45));
        assert_eq!(margin(secs(62)), secs(5));
        let (o, e) = (T0, at(3600.0));
        assert!(usable(at(3539.0), o, e));
        assert!(!usable(at(3540.0), o, e));
        assert!(!usable(at(3601.0), o, e));
        // A set that arrived already expired (a wrong clock) is never usable.
        assert!(!usable(T0, T0, at(-1.0)));
    }

    #[test]
    fn fifteen_minute_sessions_make_sdks_refresh_on_every_call() {
        assert!(sdks_refresh_every_call(secs(900)));
        assert!(!sdks_refresh_every_call(secs(901)));
        assert!(!sdks_refresh_every_call(secs(3600)));
    }
}
