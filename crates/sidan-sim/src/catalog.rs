//! The standard skill taxonomy and service catalog of a civilization-practice
//! center: the services the examples and simulations use.

use sidan_core::catalog::ServiceSpec;
use sidan_core::id::{ServiceId, SkillId};
use sidan_core::skills::SkillSpec;

/// Skills as `(id, name, broader categories)`.
pub const SKILLS: &[(&str, &str, &[&str])] = &[
    ("care", "Care", &[]),
    ("elderly-care", "Elderly care", &["care"]),
    ("child-care", "Child care", &["care"]),
    ("home-care", "Home care", &["care"]),
    ("health", "Health", &[]),
    ("health-check", "Health checks", &["health"]),
    ("professional", "Professional volunteering", &[]),
    ("emotional-support", "Emotional support", &[]),
    ("psychological-counselling", "Psychological counselling", &["emotional-support", "professional", "health"]),
    ("rescue", "Rescue", &[]),
    ("emergency-rescue", "Emergency rescue", &["rescue", "professional"]),
    ("culture", "Culture", &[]),
    ("reading", "Reading sharing", &["culture"]),
    ("lecture", "Lectures", &["culture"]),
    ("anti-fraud", "Anti-fraud awareness", &["lecture"]),
    ("folk-arts", "Folk arts", &["culture"]),
    ("safety", "Safety", &[]),
    ("street-patrol", "Street patrol", &["safety"]),
    ("hairdressing", "Hairdressing", &[]),
    ("education", "Education", &[]),
    ("exam-support", "Exam-day support", &["education"]),
    ("admissions-advice", "University-application advice", &["education"]),
    ("agriculture", "Agriculture", &[]),
    ("farming-tech", "Farming technology", &["agriculture"]),
    ("aid", "Aid", &[]),
    ("hardship-aid", "Hardship aid", &["aid", "care"]),
];

/// Services as `(id, name, skills, default duration in minutes, relative demand)`.
pub const SERVICES: &[(&str, &str, &[&str], u32, u32)] = &[
    ("weekend-childcare", "Weekend childcare", &["child-care"], 180, 8),
    ("reading-sharing", "Reading sharing", &["reading"], 90, 5),
    ("elderly-day-care", "Elderly day care", &["elderly-care"], 240, 14),
    ("health-check", "Health check", &["health-check"], 60, 10),
    ("home-care", "Home care", &["home-care"], 120, 12),
    ("hardship-aid", "Hardship aid", &["hardship-aid"], 90, 6),
    ("emotional-comfort", "Emotional comfort", &["emotional-support"], 60, 6),
    ("emergency-rescue", "Emergency rescue", &["emergency-rescue"], 120, 1),
    ("psychological-counselling", "Psychological counselling", &["psychological-counselling"], 60, 3),
    ("free-haircut", "Free haircut", &["hairdressing"], 60, 8),
    ("street-patrol", "Street patrol", &["street-patrol"], 120, 4),
    ("exam-day-support", "Exam-day support", &["exam-support"], 240, 2),
    ("university-application-advice", "University-application advice", &["admissions-advice"], 60, 2),
    ("farming-tech-visit", "Farming-technology visit", &["farming-tech"], 120, 5),
    ("theory-lecture", "Theory lecture", &["lecture"], 90, 5),
    ("anti-fraud-talk", "Anti-fraud talk", &["anti-fraud"], 60, 5),
    ("festival-folk-event", "Festival folk-culture event", &["folk-arts"], 180, 4),
];

fn id<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().expect("catalog ids are valid")
}

/// The taxonomy as specs.
pub fn skill_specs() -> Vec<SkillSpec> {
    SKILLS
        .iter()
        .map(|(s, name, broader)| SkillSpec {
            id: id::<SkillId>(s),
            name: (*name).to_owned(),
            broader: broader.iter().map(|b| id(b)).collect(),
        })
        .collect()
}

/// The catalog as specs.
pub fn service_specs() -> Vec<ServiceSpec> {
    SERVICES
        .iter()
        .map(|(s, name, skills, dur, _)| ServiceSpec {
            id: id::<ServiceId>(s),
            name: (*name).to_owned(),
            skills: skills.iter().map(|k| id(k)).collect(),
            default_duration_min: *dur,
        })
        .collect()
}
