//! How teams and residents behave in a simulation: answering offers,
//! arriving (or not), serving, rating, cancelling, and volunteers spending
//! their points and banked time. Seeded, so a seed names a run for good.

use chrono::Duration;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sidan_core::lifecycle::evaluation::Tag;
use sidan_core::lifecycle::{DeclineReason, RaterRole, Text};
use sidan_core::request::Urgency;

/// The rates of a behaviour model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BehaviourConfig {
    /// The seed.
    pub seed: u64,
    /// Share of offers accepted in time.
    pub accept: f64,
    /// Share of offers declined (the rest are left to expire).
    pub decline: f64,
    /// Mean minutes before a team answers an ordinary offer.
    pub mean_answer_min: f64,
    /// Mean minutes before a team answers an emergency or recruitment offer.
    pub mean_urgent_answer_min: f64,
    /// Share of accepted requests whose team never arrives.
    pub no_show: f64,
    /// Share of requests the resident cancels before service.
    pub cancel: f64,
    /// Chance each role rates a completed request: resident, station, team, third party.
    pub rate: [f64; 4],
    /// Mean rating.
    pub mean_score: f64,
    /// Chance the resident says a completed request was not served (a dispute).
    pub dispute: f64,
    /// Chance the station finds a disputed request was served after all.
    pub dispute_served: f64,
    /// Chance a volunteer credited with points goes to redeem goods (if they can afford any).
    pub redeem: f64,
    /// Chance a reserved redemption is picked up before its timeout (the rest expire).
    pub pick_up: f64,
    /// Chance a volunteer credited with banked minutes spends an hour of them (if they have three).
    pub withdraw: f64,
}

impl Default for BehaviourConfig {
    fn default() -> Self {
        Self {
            seed: 11,
            accept: 0.62,
            decline: 0.25,
            mean_answer_min: 8.0,
            mean_urgent_answer_min: 1.0,
            no_show: 0.02,
            cancel: 0.03,
            rate: [0.9, 0.7, 0.95, 0.1],
            mean_score: 4.4,
            dispute: 0.005,
            dispute_served: 0.7,
            redeem: 0.2,
            pick_up: 0.8,
            withdraw: 0.03,
        }
    }
}

/// A team's answer to an offer.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Accept after this long.
    Accept(Duration),
    /// Decline after this long.
    Decline(Duration, DeclineReason),
    /// Let the offer expire.
    Ignore,
}

/// A seeded behaviour model.
#[derive(Debug, Clone)]
pub struct Behaviour {
    cfg: BehaviourConfig,
    rng: ChaCha8Rng,
    /// The ledger's choices draw apart, so they leave the other choices of a seed as they were.
    ledger_rng: ChaCha8Rng,
}

impl Behaviour {
    /// A model with these rates.
    pub fn new(cfg: BehaviourConfig) -> Self {
        Self {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            ledger_rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x6c65_6467_6572),
            cfg,
        }
    }

    /// How many units of an item a station receives at the start: `base` to 1.5 × `base`.
    pub fn restock(&mut self, base: u64) -> u64 {
        base + self.ledger_rng.random_range(0..=base / 2)
    }

    /// Whether a volunteer just credited with points goes to redeem goods, and after how long
    /// (2 to 72 hours).
    pub fn redeem_after(&mut self) -> Option<Duration> {
        self.ledger_rng
            .random_bool(self.cfg.redeem)
            .then(|| Duration::minutes(self.ledger_rng.random_range(120..=72 * 60)))
    }

    /// One of `n` choices (`n` > 0).
    pub fn pick(&mut self, n: usize) -> usize {
        self.ledger_rng.random_range(0..n.max(1))
    }

    /// Whether a reservation with this timeout is picked up, and how long after it was made
    /// (half an hour to an hour before the timeout).
    pub fn pick_up(&mut self, timeout: Duration) -> Option<Duration> {
        let last = (timeout.num_minutes() - 60).max(31);
        self.ledger_rng.random_bool(self.cfg.pick_up).then(|| Duration::minutes(self.ledger_rng.random_range(30..last)))
    }

    /// Whether a volunteer just credited with banked minutes spends some, and after how long
    /// (1 to 48 hours).
    pub fn withdraw_after(&mut self) -> Option<Duration> {
        self.ledger_rng
            .random_bool(self.cfg.withdraw)
            .then(|| Duration::minutes(self.ledger_rng.random_range(60..=48 * 60)))
    }

    fn exp_minutes(&mut self, mean: f64) -> Duration {
        let u: f64 = self.rng.random_range(1e-9..1.0);
        let min = -mean * u.ln();
        Duration::seconds((min * 60.0).min(7.0 * 24.0 * 3600.0) as i64 + 1)
    }

    /// How a team answers an offer of a request of this urgency.
    pub fn answer(&mut self, urgency: Urgency, broadcast: bool) -> Answer {
        let mean = if urgency == Urgency::Emergency || broadcast {
            self.cfg.mean_urgent_answer_min
        } else {
            self.cfg.mean_answer_min
        };
        let u: f64 = self.rng.random();
        let after = self.exp_minutes(mean);
        if u < self.cfg.accept {
            Answer::Accept(after)
        } else if u < self.cfg.accept + self.cfg.decline {
            let reason = match self.rng.random_range(0..3) {
                0 => DeclineReason::NoVolunteers,
                1 => DeclineReason::TooFar,
                // A short constant: always within the text bound.
                _ => DeclineReason::Other(Text::new("schedule clash").unwrap_or_default()),
            };
            Answer::Decline(after, reason)
        } else {
            Answer::Ignore
        }
    }

    /// Whether the holding team fails to arrive.
    pub fn no_show(&mut self) -> bool {
        self.rng.random_bool(self.cfg.no_show)
    }

    /// Whether the resident cancels, and after what share of the wait.
    pub fn cancel(&mut self) -> Option<f64> {
        self.rng.random_bool(self.cfg.cancel).then(|| self.rng.random_range(0.05..0.95))
    }

    /// Minutes after the window opens that the team arrives.
    pub fn arrival_delay(&mut self, slack_min: i64) -> Duration {
        Duration::minutes(self.rng.random_range(0..=slack_min.clamp(0, 90)))
    }

    /// Minutes of service for a request expecting `expected`.
    pub fn service_minutes(&mut self, expected: u32) -> u32 {
        let f: f64 = self.rng.random_range(0.7..1.3);
        ((f64::from(expected) * f).round() as u32).clamp(1, 24 * 60)
    }

    /// How many volunteers come.
    pub fn volunteers(&mut self, members: u32) -> u32 {
        self.rng.random_range(1..=members.clamp(1, 6))
    }

    /// The ratings given after completion: role, score, tags, delay. The
    /// third party rates only requests sampled for review.
    pub fn ratings(&mut self, sampled: bool) -> Vec<(RaterRole, u8, Vec<Tag>, Duration)> {
        let mut out = Vec::new();
        for (i, role) in RaterRole::ALL.into_iter().enumerate() {
            if role == RaterRole::ThirdParty && !sampled {
                continue;
            }
            if self.rng.random_bool(self.cfg.rate[i]) {
                let noise: f64 = self.rng.random_range(-1.6..1.2);
                let mut score = (self.cfg.mean_score + noise).round().clamp(1.0, 5.0) as u8;
                let mut tags = Vec::new();
                if role == RaterRole::Resident && self.rng.random_bool(self.cfg.dispute) {
                    score = 1;
                    tags.push(Tag::NotServed);
                } else if score >= 5 {
                    tags.push(Tag::Punctual);
                } else if score <= 2 {
                    tags.push(Tag::Late);
                }
                out.push((role, score, tags, self.exp_minutes(12.0 * 60.0)));
            }
        }
        out
    }

    /// The station's finding on a dispute: served or not, and after how long.
    pub fn resolve_dispute(&mut self) -> (bool, Duration) {
        (self.rng.random_bool(self.cfg.dispute_served), self.exp_minutes(24.0 * 60.0))
    }
}
