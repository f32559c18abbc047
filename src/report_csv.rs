//! Reports as CSV: one row per unit and period, the columns of
//! [`UnitReport`] flattened (per-service counts and rankings stay in the JSON).

use sidan_core::report::{Report, UnitReport};

/// The header row.
pub const HEADER: [&str; 23] = [
    "period",
    "unit",
    "kind",
    "requests",
    "closed",
    "cancelled",
    "expired",
    "unfulfillable",
    "open",
    "fulfilment",
    "accept_p50_min",
    "accept_p90_min",
    "service_p50_min",
    "service_p90_min",
    "hours_served",
    "active_volunteers",
    "active_teams",
    "satisfaction",
    "settled",
    "disputes",
    "escalations",
    "recruitment_orders",
    "no_shows",
];

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn record(u: &UnitReport) -> Vec<String> {
    let state = |s: &str| u.by_state.get(s).copied().unwrap_or(0).to_string();
    vec![
        u.period.to_string(),
        u.unit.to_string(),
        format!("{:?}", u.kind).to_lowercase(),
        u.requests.to_string(),
        state("closed"),
        state("cancelled"),
        state("expired"),
        state("unfulfillable"),
        state("open"),
        format!("{:.4}", u.fulfilment),
        opt(u.to_accept_min.p50),
        opt(u.to_accept_min.p90),
        opt(u.to_service_min.p50),
        opt(u.to_service_min.p90),
        format!("{:.2}", u.hours_served),
        u.active_volunteers.to_string(),
        u.active_teams.to_string(),
        opt(u.satisfaction.map(|s| format!("{s:.3}"))),
        u.settled.to_string(),
        u.disputes.to_string(),
        u.escalations.to_string(),
        u.recruitment_orders.to_string(),
        u.no_shows.to_string(),
    ]
}

/// Writes a report as CSV.
///
/// # Errors
/// If the writer fails.
pub fn write<W: std::io::Write>(report: &Report, w: W) -> Result<(), csv::Error> {
    let mut out = csv::Writer::from_writer(w);
    out.write_record(HEADER)?;
    for u in &report.units {
        out.write_record(record(u))?;
    }
    out.flush()?;
    Ok(())
}
