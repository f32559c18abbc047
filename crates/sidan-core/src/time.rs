//! Time windows and team availability.
//!
//! Requests carry a [`TimeWindow`] in UTC. Teams declare availability in the
//! local time of their unit: weekly slots plus dated exceptions (extra
//! availability or blocked periods). Internally both become whole minutes on
//! a local timeline ("local minutes since 1970-01-01T00:00"), so the check in
//! the dispatch hot path is integer arithmetic with no calendar library.
//!
//! A window is converted to local minutes with the offset in force at each of
//! its ends; inside a daylight-saving change the local timeline is taken at
//! face value (Asia/Shanghai, the default, has none).

use borsh::{BorshDeserialize, BorshSerialize};
use chrono::{DateTime, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Minutes in a day.
pub const DAY_MIN: i64 = 1440;
/// Minutes in a week.
pub const WEEK_MIN: i64 = 7 * DAY_MIN;
/// The longest request window accepted.
pub const MAX_WINDOW_MIN: i64 = 31 * DAY_MIN;

/// Why a time window is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WindowError {
    /// The window ends at or before its start.
    #[error("window ends ({end}) at or before it starts ({start})")]
    Reversed {
        /// Its start.
        start: DateTime<Utc>,
        /// Its end.
        end: DateTime<Utc>,
    },
    /// The window is longer than [`MAX_WINDOW_MIN`].
    #[error("window is {minutes} minutes long, at most {MAX_WINDOW_MIN} are allowed")]
    TooLong {
        /// Its length in minutes.
        minutes: i64,
    },
}

/// A half-open interval of UTC time `[start, end)`, non-empty and bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct TimeWindow {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

impl TimeWindow {
    /// Makes a window, rejecting reversed, empty and over-long ones.
    pub fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Self, WindowError> {
        if end <= start {
            return Err(WindowError::Reversed { start, end });
        }
        let minutes = (end - start).num_minutes();
        if minutes > MAX_WINDOW_MIN {
            return Err(WindowError::TooLong { minutes });
        }
        Ok(Self { start, end })
    }

    /// Its start.
    pub fn start(&self) -> DateTime<Utc> {
        self.start
    }

    /// Its end.
    pub fn end(&self) -> DateTime<Utc> {
        self.end
    }

    /// Its length in whole minutes.
    pub fn minutes(&self) -> i64 {
        (self.end - self.start).num_minutes()
    }

    /// The window as local minutes `[start, end)` in `tz`, rounded inwards to whole minutes.
    pub fn to_local_minutes(&self, tz: Tz) -> (i64, i64) {
        (local_minute_ceil(self.start, tz), local_minute_floor(self.end, tz))
    }
}

impl<'de> Deserialize<'de> for TimeWindow {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            start: DateTime<chrono::FixedOffset>,
            end: DateTime<chrono::FixedOffset>,
        }
        let raw = Raw::deserialize(d)?;
        TimeWindow::new(raw.start.to_utc(), raw.end.to_utc()).map_err(serde::de::Error::custom)
    }
}

impl borsh::BorshSerialize for TimeWindow {
    fn serialize<W: std::io::Write>(&self, w: &mut W) -> std::io::Result<()> {
        crate::binary::at::serialize(&self.start, w)?;
        crate::binary::at::serialize(&self.end, w)
    }
}

impl borsh::BorshDeserialize for TimeWindow {
    fn deserialize_reader<R: std::io::Read>(r: &mut R) -> std::io::Result<Self> {
        let start = crate::binary::at::deserialize(r)?;
        let end = crate::binary::at::deserialize(r)?;
        TimeWindow::new(start, end).map_err(crate::binary::invalid)
    }
}

fn offset_s(t: DateTime<Utc>, tz: Tz) -> i64 {
    i64::from(tz.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc())
}

/// Local minutes since the epoch at `t` in `tz`, rounded down.
pub fn local_minute_floor(t: DateTime<Utc>, tz: Tz) -> i64 {
    (t.timestamp() + offset_s(t, tz)).div_euclid(60)
}

/// Local minutes since the epoch at `t` in `tz`, rounded up.
pub fn local_minute_ceil(t: DateTime<Utc>, tz: Tz) -> i64 {
    let s = t.timestamp() + offset_s(t, tz);
    let extra = i64::from(t.timestamp_subsec_nanos() > 0);
    (s + extra + 59).div_euclid(60)
}

/// Local minutes since the epoch of a naive local date-time.
pub fn naive_local_minutes(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp().div_euclid(60)
}

/// Minute of the week (Monday 00:00 = 0) of a local minute.
pub fn minute_of_week(local_min: i64) -> i64 {
    // 1970-01-01 was a Thursday, three days after a Monday.
    (local_min + 3 * DAY_MIN).rem_euclid(WEEK_MIN)
}

/// A day of the week.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, BorshSerialize, BorshDeserialize,
)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Day {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Day {
    /// All days, Monday first.
    pub const ALL: [Day; 7] = [Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri, Day::Sat, Day::Sun];

    fn index(self) -> i64 {
        self as i64
    }
}

/// A clock time of day `HH:MM`, from `00:00` to `24:00`, as minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClockTime(u16);

impl ClockTime {
    /// Makes a clock time from minutes after midnight (0..=1440).
    pub fn from_minutes(m: u16) -> Option<Self> {
        (m <= 1440).then_some(Self(m))
    }

    /// Minutes after midnight.
    pub fn minutes(self) -> u16 {
        self.0
    }
}

impl std::str::FromStr for ClockTime {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a time of day HH:MM between 00:00 and 24:00");
        let (h, m) = s.split_once(':').ok_or_else(bad)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(bad());
        }
        let h: u16 = h.parse().map_err(|_| bad())?;
        let m: u16 = m.parse().map_err(|_| bad())?;
        if m >= 60 {
            return Err(bad());
        }
        Self::from_minutes(h * 60 + m).ok_or_else(bad)
    }
}

impl std::fmt::Display for ClockTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl Serialize for ClockTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ClockTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str> as Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl borsh::BorshSerialize for ClockTime {
    fn serialize<W: std::io::Write>(&self, w: &mut W) -> std::io::Result<()> {
        borsh::BorshSerialize::serialize(&self.0, w)
    }
}

impl borsh::BorshDeserialize for ClockTime {
    fn deserialize_reader<R: std::io::Read>(r: &mut R) -> std::io::Result<Self> {
        let m = <u16 as borsh::BorshDeserialize>::deserialize_reader(r)?;
        ClockTime::from_minutes(m).ok_or_else(|| crate::binary::invalid(format_args!("clock time of {m} minutes")))
    }
}

/// A weekly slot: the same hours on some days of every week, in local time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields)]
pub struct WeeklySlot {
    /// The days it applies to.
    pub days: Vec<Day>,
    /// Start of the slot.
    pub start: ClockTime,
    /// End of the slot; at or before `start` means it runs past midnight.
    pub end: ClockTime,
}

/// A dated exception in local time: extra availability or a blocked period.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields)]
pub struct DatedException {
    /// Local start.
    #[borsh(
        serialize_with = "crate::binary::naive::serialize",
        deserialize_with = "crate::binary::naive::deserialize"
    )]
    pub start: NaiveDateTime,
    /// Local end, after `start`.
    #[borsh(
        serialize_with = "crate::binary::naive::serialize",
        deserialize_with = "crate::binary::naive::deserialize"
    )]
    pub end: NaiveDateTime,
    /// `true` adds availability, `false` blocks it.
    pub available: bool,
}

/// A team's availability as declared.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, BorshSerialize, BorshDeserialize)]
#[serde(deny_unknown_fields)]
pub struct AvailabilitySpec {
    /// Weekly slots.
    #[serde(default)]
    pub weekly: Vec<WeeklySlot>,
    /// Dated exceptions.
    #[serde(default)]
    pub exceptions: Vec<DatedException>,
}

impl AvailabilitySpec {
    /// Available at all times.
    pub fn always() -> Self {
        Self {
            weekly: vec![WeeklySlot { days: Day::ALL.to_vec(), start: ClockTime(0), end: ClockTime(1440) }],
            exceptions: Vec::new(),
        }
    }
}

/// Why an availability declaration is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AvailabilityError {
    /// A weekly slot names no day.
    #[error("weekly slot {0} names no day")]
    NoDays(usize),
    /// An exception ends at or before its start.
    #[error("exception {0} ends at or before it starts")]
    ReversedException(usize),
}

/// Compiled availability: integer intervals on the local timeline.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Availability {
    /// Minute-of-week intervals `[a, b)` with `0 <= a < b <= WEEK_MIN + DAY_MIN`, sorted, merged.
    weekly: Vec<(i64, i64)>,
    /// Extra local intervals, sorted by start.
    extra: Vec<(i64, i64)>,
    /// Blocked local intervals, sorted and merged.
    blocked: Vec<(i64, i64)>,
}

fn merge(mut v: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    v.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(v.len());
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

impl Availability {
    /// Compiles a declaration.
    pub fn compile(spec: &AvailabilitySpec) -> Result<Self, AvailabilityError> {
        let mut weekly = Vec::new();
        for (i, slot) in spec.weekly.iter().enumerate() {
            if slot.days.is_empty() {
                return Err(AvailabilityError::NoDays(i));
            }
            let (s, e) = (i64::from(slot.start.0), i64::from(slot.end.0));
            let len = if e > s { e - s } else { e + DAY_MIN - s };
            for d in &slot.days {
                let a = d.index() * DAY_MIN + s;
                weekly.push((a, a + len));
            }
        }
        // Slots that run past the end of the week also cover its start.
        let wrapped: Vec<_> = weekly.iter().filter(|&&(_, b)| b > WEEK_MIN).map(|&(_, b)| (0, b - WEEK_MIN)).collect();
        weekly.extend(wrapped);
        let weekly: Vec<_> = weekly.into_iter().map(|(a, b)| (a, b.min(WEEK_MIN))).collect();
        let mut extra = Vec::new();
        let mut blocked = Vec::new();
        for (i, ex) in spec.exceptions.iter().enumerate() {
            if ex.end <= ex.start {
                return Err(AvailabilityError::ReversedException(i));
            }
            let iv = (naive_local_minutes(ex.start), naive_local_minutes(ex.end));
            if ex.available { extra.push(iv) } else { blocked.push(iv) }
        }
        Ok(Self { weekly: merge(weekly), extra: merge(extra), blocked: merge(blocked) })
    }

    /// Whether some available stretch holds `duration_min` inside the local
    /// window `[ls, le)`. `scratch` is reused between calls to avoid allocation.
    pub fn fits(&self, ls: i64, le: i64, duration_min: i64, scratch: &mut Vec<(i64, i64)>) -> bool {
        if le - ls < duration_min {
            return false;
        }
        scratch.clear();
        let mut week = ls - minute_of_week(ls);
        while week < le {
            for &(a, b) in &self.weekly {
                let (a, b) = ((week + a).max(ls), (week + b).min(le));
                if a < b {
                    scratch.push((a, b));
                }
            }
            week += WEEK_MIN;
        }
        for &(a, b) in &self.extra {
            let (a, b) = (a.max(ls), b.min(le));
            if a < b {
                scratch.push((a, b));
            }
        }
        scratch.sort_unstable();
        // Walk merged available stretches and cut out blocked periods.
        let mut i = 0;
        while i < scratch.len() {
            let (start, mut end) = scratch[i];
            i += 1;
            while i < scratch.len() && scratch[i].0 <= end {
                end = end.max(scratch[i].1);
                i += 1;
            }
            if self.longest_unblocked(start, end) >= duration_min {
                return true;
            }
        }
        false
    }

    fn longest_unblocked(&self, start: i64, end: i64) -> i64 {
        let first = self.blocked.partition_point(|&(_, b)| b <= start);
        let mut cursor = start;
        let mut best = 0;
        for &(a, b) in &self.blocked[first..] {
            if a >= end {
                break;
            }
            best = best.max(a - cursor);
            cursor = cursor.max(b);
        }
        best.max(end - cursor)
    }

    /// Heap bytes held by the compiled intervals.
    pub fn heap_bytes(&self) -> usize {
        (self.weekly.capacity() + self.extra.capacity() + self.blocked.capacity()) * std::mem::size_of::<(i64, i64)>()
    }

    /// Whether local minute `m` is available (the reference definition, used by tests).
    pub fn is_available_at(&self, m: i64) -> bool {
        let mow = minute_of_week(m);
        let weekly = self.weekly.iter().any(|&(a, b)| a <= mow && mow < b);
        let extra = self.extra.iter().any(|&(a, b)| a <= m && m < b);
        let blocked = self.blocked.iter().any(|&(a, b)| a <= m && m < b);
        (weekly || extra) && !blocked
    }
}

/// Nanoseconds since the epoch (saturating outside ±292 years, which no event reaches).
pub(crate) fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 { i64::MIN } else { i64::MAX })
}

/// The instant `nanos` nanoseconds after the epoch.
pub(crate) fn from_nanos(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use proptest::prelude::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d).and_then(|x| x.and_hms_opt(h, mi, 0)).expect("valid date")
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("valid").to_utc()
    }

    #[test]
    fn window_validation() {
        let a = utc("2026-12-01T09:00:00+08:00");
        let b = utc("2026-12-01T11:00:00+08:00");
        assert!(TimeWindow::new(a, b).is_ok());
        assert!(matches!(TimeWindow::new(b, a), Err(WindowError::Reversed { .. })));
        assert!(matches!(TimeWindow::new(a, a), Err(WindowError::Reversed { .. })));
        let far = utc("2027-02-01T09:00:00+08:00");
        assert!(matches!(TimeWindow::new(a, far), Err(WindowError::TooLong { .. })));
        let w: Result<TimeWindow, _> =
            serde_json::from_str(r#"{"start": "2026-12-01T11:00:00+08:00", "end": "2026-12-01T09:00:00+08:00"}"#);
        assert!(w.is_err());
        let w = TimeWindow::new(a, b).expect("valid");
        let (ls, le) = w.to_local_minutes(chrono_tz::Asia::Shanghai);
        assert_eq!(ls, naive_local_minutes(at(2026, 12, 1, 9, 0)));
        assert_eq!(le - ls, 120);
    }

    #[test]
    fn clock_times() {
        assert_eq!("08:30".parse::<ClockTime>().map(|c| c.minutes()), Ok(510));
        assert_eq!("24:00".parse::<ClockTime>().map(|c| c.minutes()), Ok(1440));
        for bad in ["24:01", "8:30", "08:60", "ab:cd", "0830"] {
            assert!(bad.parse::<ClockTime>().is_err(), "{bad}");
        }
    }

    #[test]
    fn weekly_exceptions_and_overnight() {
        let spec: AvailabilitySpec = serde_json::from_str(
            r#"{"weekly": [{"days": ["tue"], "start": "08:00", "end": "12:00"},
                           {"days": ["sun"], "start": "22:00", "end": "02:00"}],
                "exceptions": [{"start": "2026-12-01T09:00:00", "end": "2026-12-01T10:00:00", "available": false},
                               {"start": "2026-12-02T14:00:00", "end": "2026-12-02T16:00:00", "available": true}]}"#,
        )
        .expect("valid spec");
        let av = Availability::compile(&spec).expect("valid");
        let m = |t| naive_local_minutes(t);
        let mut s = Vec::new();
        // 2026-12-01 is a Tuesday: 08-12 minus a blocked 09-10 leaves 2 h after 10:00.
        assert!(av.fits(m(at(2026, 12, 1, 7, 0)), m(at(2026, 12, 1, 13, 0)), 120, &mut s));
        assert!(!av.fits(m(at(2026, 12, 1, 7, 0)), m(at(2026, 12, 1, 13, 0)), 121, &mut s));
        // A week later nothing is blocked.
        assert!(av.fits(m(at(2026, 12, 8, 8, 0)), m(at(2026, 12, 8, 12, 0)), 240, &mut s));
        // Wednesday extra slot.
        assert!(av.fits(m(at(2026, 12, 2, 0, 0)), m(at(2026, 12, 3, 0, 0)), 120, &mut s));
        // Sunday 22:00 to Monday 02:00 crosses the week boundary.
        assert!(av.fits(m(at(2026, 12, 6, 21, 0)), m(at(2026, 12, 7, 3, 0)), 240, &mut s));
        assert!(!av.fits(m(at(2026, 12, 6, 21, 0)), m(at(2026, 12, 7, 3, 0)), 241, &mut s));
        let bad = AvailabilitySpec {
            weekly: vec![WeeklySlot { days: vec![], start: ClockTime(0), end: ClockTime(60) }],
            exceptions: vec![],
        };
        assert_eq!(Availability::compile(&bad), Err(AvailabilityError::NoDays(0)));
    }

    fn slot() -> impl Strategy<Value = WeeklySlot> {
        (proptest::sample::subsequence(Day::ALL.to_vec(), 1..4), 0u16..=1440, 0u16..=1440)
            .prop_map(|(days, s, e)| WeeklySlot { days, start: ClockTime(s), end: ClockTime(e) })
    }

    fn exception() -> impl Strategy<Value = DatedException> {
        let base = naive_local_minutes(at(2026, 11, 30, 0, 0));
        (0i64..(10 * DAY_MIN), 1i64..(2 * DAY_MIN), any::<bool>()).prop_map(move |(s, len, available)| {
            let t = |m: i64| DateTime::from_timestamp(m * 60, 0).expect("in range").naive_utc();
            DatedException { start: t(base + s), end: t(base + s + len), available }
        })
    }

    proptest! {
        /// The interval algorithm agrees with a minute-by-minute scan.
        #[test]
        fn fits_matches_minute_scan(
            weekly in proptest::collection::vec(slot(), 0..4),
            exceptions in proptest::collection::vec(exception(), 0..4),
            start in 0i64..(12 * DAY_MIN), len in 1i64..(3 * DAY_MIN), dur in 1i64..600,
        ) {
            let av = Availability::compile(&AvailabilitySpec { weekly, exceptions }).expect("valid");
            let ls = naive_local_minutes(at(2026, 11, 29, 0, 0)) + start;
            let le = ls + len;
            let mut run = 0;
            let mut oracle = false;
            for m in ls..le {
                run = if av.is_available_at(m) { run + 1 } else { 0 };
                oracle |= run >= dur;
            }
            prop_assert_eq!(av.fits(ls, le, dur, &mut Vec::new()), oracle);
        }
    }
}
