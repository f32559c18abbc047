//! Validated values that commands and events carry: a rating, minutes of
//! service, a bounded text, the volunteers present, a rating's tags.
//!
//! Each type can only hold a valid value: its constructor and its serde
//! form (`try_from`) refuse the rest with a [`ValueError`]. So `decide`
//! checks the state of the request, never the shape of a value, and a
//! stored event that decodes holds values that were valid when written.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

use crate::id::VolunteerId;
use crate::lifecycle::evaluation::{MAX_TAGS, Tag};

/// The longest free text (a reason, a comment, a contact field) a command may carry, in bytes.
pub const MAX_TEXT_LEN: usize = 500;

/// The most volunteers one completion may list.
pub const MAX_VOLUNTEERS: usize = 200;

/// The longest service one completion may record, in minutes (24 hours).
pub const MAX_SERVICE_MIN: u32 = 24 * 60;

/// Why a value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// A rating outside 1..=5.
    #[error("{score} is not in 1..=5")]
    ScoreOutOfRange {
        /// The rating given.
        score: u8,
    },
    /// Minutes of service outside 1..=[`MAX_SERVICE_MIN`].
    #[error("{minutes} is not in 1..={MAX_SERVICE_MIN}")]
    MinutesOutOfRange {
        /// The minutes given.
        minutes: u32,
    },
    /// A text longer than [`MAX_TEXT_LEN`] bytes.
    #[error("{len} bytes, at most {MAX_TEXT_LEN} are allowed")]
    TextTooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// More than [`MAX_VOLUNTEERS`] volunteers.
    #[error("{count} volunteers listed, at most {MAX_VOLUNTEERS} are allowed")]
    TooManyVolunteers {
        /// How many were listed.
        count: usize,
    },
    /// A volunteer listed twice.
    #[error("volunteer {volunteer} is listed twice")]
    DuplicateVolunteer {
        /// The volunteer.
        volunteer: VolunteerId,
    },
    /// More than [`MAX_TAGS`] tags.
    #[error("{count} tags, at most {MAX_TAGS} are allowed")]
    TooManyTags {
        /// How many were given.
        count: usize,
    },
}

/// A rating, 1 to 5 (多元评单).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Score(u8);

impl Score {
    /// The lowest rating.
    pub const MIN: Score = Score(1);
    /// The highest rating.
    pub const MAX: Score = Score(5);

    /// A rating, if `score` is in 1..=5.
    ///
    /// # Errors
    /// [`ValueError::ScoreOutOfRange`] otherwise.
    pub fn new(score: u8) -> Result<Self, ValueError> {
        if (1..=5).contains(&score) { Ok(Score(score)) } else { Err(ValueError::ScoreOutOfRange { score }) }
    }

    /// The rating as a number.
    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Score {
    type Error = ValueError;
    fn try_from(v: u8) -> Result<Self, ValueError> {
        Score::new(v)
    }
}

impl From<Score> for u8 {
    fn from(s: Score) -> u8 {
        s.0
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Minutes of service one completion records, 1..=[`MAX_SERVICE_MIN`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct ServiceMinutes(u32);

impl ServiceMinutes {
    /// Minutes of service, if in 1..=[`MAX_SERVICE_MIN`].
    ///
    /// # Errors
    /// [`ValueError::MinutesOutOfRange`] otherwise.
    pub fn new(minutes: u32) -> Result<Self, ValueError> {
        if (1..=MAX_SERVICE_MIN).contains(&minutes) {
            Ok(ServiceMinutes(minutes))
        } else {
            Err(ValueError::MinutesOutOfRange { minutes })
        }
    }

    /// The minutes as a number.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for ServiceMinutes {
    type Error = ValueError;
    fn try_from(v: u32) -> Result<Self, ValueError> {
        ServiceMinutes::new(v)
    }
}

impl From<ServiceMinutes> for u32 {
    fn from(m: ServiceMinutes) -> u32 {
        m.0
    }
}

impl fmt::Display for ServiceMinutes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A free text of at most [`MAX_TEXT_LEN`] bytes: a reason, a note, a comment.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Text(String);

impl Text {
    /// A text, if it is at most [`MAX_TEXT_LEN`] bytes long.
    ///
    /// # Errors
    /// [`ValueError::TextTooLong`] otherwise.
    pub fn new(s: impl Into<String>) -> Result<Self, ValueError> {
        let s = s.into();
        check_len(&s)?;
        Ok(Text(s))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether a text fits [`MAX_TEXT_LEN`].
///
/// # Errors
/// [`ValueError::TextTooLong`] when it does not.
pub fn check_len(s: &str) -> Result<(), ValueError> {
    if s.len() > MAX_TEXT_LEN { Err(ValueError::TextTooLong { len: s.len() }) } else { Ok(()) }
}

impl TryFrom<String> for Text {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, ValueError> {
        Text::new(s)
    }
}

impl TryFrom<&str> for Text {
    type Error = ValueError;
    fn try_from(s: &str) -> Result<Self, ValueError> {
        Text::new(s)
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.0
    }
}

impl Deref for Text {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The volunteers present at a service: at most [`MAX_VOLUNTEERS`], each once, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<VolunteerId>", into = "Vec<VolunteerId>")]
pub struct Volunteers(Vec<VolunteerId>);

impl Volunteers {
    /// The list, sorted, if it is short enough and names nobody twice.
    ///
    /// # Errors
    /// [`ValueError::TooManyVolunteers`] or [`ValueError::DuplicateVolunteer`].
    pub fn new(mut list: Vec<VolunteerId>) -> Result<Self, ValueError> {
        if list.len() > MAX_VOLUNTEERS {
            return Err(ValueError::TooManyVolunteers { count: list.len() });
        }
        list.sort();
        if let Some(w) = list.windows(2).find(|w| w[0] == w[1]) {
            return Err(ValueError::DuplicateVolunteer { volunteer: w[0].clone() });
        }
        Ok(Volunteers(list))
    }

    /// The volunteers, sorted.
    pub fn as_slice(&self) -> &[VolunteerId] {
        &self.0
    }
}

impl TryFrom<Vec<VolunteerId>> for Volunteers {
    type Error = ValueError;
    fn try_from(v: Vec<VolunteerId>) -> Result<Self, ValueError> {
        Volunteers::new(v)
    }
}

impl From<Volunteers> for Vec<VolunteerId> {
    fn from(v: Volunteers) -> Vec<VolunteerId> {
        v.0
    }
}

impl Deref for Volunteers {
    type Target = [VolunteerId];
    fn deref(&self) -> &[VolunteerId] {
        &self.0
    }
}

/// A rating's tags: at most [`MAX_TAGS`] given, kept sorted and each once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<Tag>", into = "Vec<Tag>")]
pub struct Tags(Vec<Tag>);

impl Tags {
    /// The tags, sorted and without repeats, if at most [`MAX_TAGS`] are given.
    ///
    /// # Errors
    /// [`ValueError::TooManyTags`] otherwise.
    pub fn new(mut tags: Vec<Tag>) -> Result<Self, ValueError> {
        if tags.len() > MAX_TAGS {
            return Err(ValueError::TooManyTags { count: tags.len() });
        }
        tags.sort();
        tags.dedup();
        Ok(Tags(tags))
    }

    /// Whether no tag is given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `tag` is among them.
    pub fn contains(&self, tag: Tag) -> bool {
        self.0.contains(&tag)
    }

    /// The tags, sorted.
    pub fn as_slice(&self) -> &[Tag] {
        &self.0
    }
}

impl TryFrom<Vec<Tag>> for Tags {
    type Error = ValueError;
    fn try_from(v: Vec<Tag>) -> Result<Self, ValueError> {
        Tags::new(v)
    }
}

impl From<Tags> for Vec<Tag> {
    fn from(t: Tags) -> Vec<Tag> {
        t.0
    }
}

crate::binary::borsh_via!(Score, u8);
crate::binary::borsh_via!(ServiceMinutes, u32);
crate::binary::borsh_via!(Text, String);
crate::binary::borsh_via!(Volunteers, Vec<VolunteerId>);
crate::binary::borsh_via!(Tags, Vec<Tag>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_refuses_what_is_out_of_range_and_keeps_the_rest() {
        assert_eq!(Score::new(0), Err(ValueError::ScoreOutOfRange { score: 0 }));
        assert_eq!(Score::new(6), Err(ValueError::ScoreOutOfRange { score: 6 }));
        assert_eq!(Score::new(5).map(Score::get), Ok(5));
        assert_eq!(ServiceMinutes::new(0), Err(ValueError::MinutesOutOfRange { minutes: 0 }));
        assert!(ServiceMinutes::new(MAX_SERVICE_MIN).is_ok());
        assert!(ServiceMinutes::new(MAX_SERVICE_MIN + 1).is_err());
        assert!(Text::new("x".repeat(MAX_TEXT_LEN)).is_ok());
        assert_eq!(Text::new("x".repeat(MAX_TEXT_LEN + 1)), Err(ValueError::TextTooLong { len: MAX_TEXT_LEN + 1 }));
        let v = |s: &str| VolunteerId::new(s).expect("valid id");
        let vs = Volunteers::new(vec![v("b"), v("a")]).expect("two volunteers");
        assert_eq!(vs.as_slice(), &[v("a"), v("b")]);
        assert_eq!(Volunteers::new(vec![v("a"), v("a")]), Err(ValueError::DuplicateVolunteer { volunteer: v("a") }));
        assert!(Volunteers::new(vec![v("a"); MAX_VOLUNTEERS + 1]).is_err());
        let tags = Tags::new(vec![Tag::Late, Tag::Friendly, Tag::Late]).expect("three tags");
        assert_eq!(tags.as_slice(), &[Tag::Friendly, Tag::Late]);
        assert_eq!(Tags::new(vec![Tag::Late; MAX_TAGS + 1]), Err(ValueError::TooManyTags { count: MAX_TAGS + 1 }));
    }

    #[test]
    fn serde_refuses_invalid_values() {
        assert!(serde_json::from_str::<Score>("0").is_err());
        assert_eq!(serde_json::from_str::<Score>("4").map(Score::get).ok(), Some(4));
        assert!(serde_json::from_str::<ServiceMinutes>("1441").is_err());
        let long = format!("\"{}\"", "x".repeat(MAX_TEXT_LEN + 1));
        assert!(serde_json::from_str::<Text>(&long).is_err());
        assert!(serde_json::from_str::<Volunteers>(r#"["a","a"]"#).is_err());
        assert_eq!(serde_json::to_string(&Score::MAX).ok().as_deref(), Some("5"));
    }
}
