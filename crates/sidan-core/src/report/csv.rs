//! Reports as CSV: one row per unit and period, the columns of
//! [`UnitReport`] flattened (per-service counts, net amounts per ledger and
//! rankings stay in the JSON), ledger totals last; and, apart, the goods per
//! unit, period and item ([`write_stock`]).

use crate::report::{Outcome, Report, UnitReport};

/// The header row.
pub const HEADER: [&str; 38] = [
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
    "offers",
    "ratings",
    "defaulted_ratings",
    "not_served",
    "points_credited",
    "minutes_banked",
    "minutes_withdrawn",
    "points_redeemed",
    "goods_received",
    "goods_handed_out",
    "stock_on_hand",
    "adjustments",
    "reversals",
    "reservations_voided",
    "reservations_expired",
];

/// The header row of the goods CSV.
pub const STOCK_HEADER: [&str; 7] = ["period", "unit", "kind", "item", "received", "handed_out", "on_hand"];

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn record(u: &UnitReport) -> Vec<String> {
    let state = |o: Outcome| u.outcome(o).to_string();
    let l = &u.ledger;
    vec![
        u.period.to_string(),
        u.unit.to_string(),
        kind(u),
        u.requests.to_string(),
        state(Outcome::Closed),
        state(Outcome::Cancelled),
        state(Outcome::Expired),
        state(Outcome::Unfulfillable),
        state(Outcome::Open),
        format!("{:.4}", u.fulfilment),
        opt(u.to_accept_min.p50),
        opt(u.to_accept_min.p90),
        opt(u.to_service_min.p50),
        opt(u.to_service_min.p90),
        format!("{:.2}", u.hours_served()),
        u.active_volunteers.to_string(),
        u.active_teams.to_string(),
        opt(u.satisfaction.map(|s| format!("{s:.3}"))),
        u.settled.to_string(),
        u.disputes.to_string(),
        u.escalations.to_string(),
        u.recruitment_orders.to_string(),
        u.no_shows.to_string(),
        u.offers.to_string(),
        u.ratings.to_string(),
        u.defaulted_ratings.to_string(),
        u.not_served.to_string(),
        l.points_credited.to_string(),
        l.minutes_banked.to_string(),
        l.minutes_withdrawn.to_string(),
        l.points_redeemed.to_string(),
        l.goods.values().map(|g| g.received).sum::<u64>().to_string(),
        l.goods.values().map(|g| g.handed_out).sum::<u64>().to_string(),
        l.goods.values().map(|g| g.on_hand).sum::<i64>().to_string(),
        l.adjustments.to_string(),
        l.reversals.to_string(),
        l.reservations_voided.to_string(),
        l.reservations_expired.to_string(),
    ]
}

fn kind(u: &UnitReport) -> String {
    format!("{:?}", u.kind).to_lowercase()
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

/// Writes the goods of a report as CSV: one row per unit, period and item
/// (units received, handed out, and on hand at the period's end, the unit's
/// stations summed), in the report's row order, items by id.
///
/// # Errors
/// If the writer fails.
pub fn write_stock<W: std::io::Write>(report: &Report, w: W) -> Result<(), csv::Error> {
    let mut out = csv::Writer::from_writer(w);
    out.write_record(STOCK_HEADER)?;
    for u in &report.units {
        for (item, g) in &u.ledger.goods {
            out.write_record([
                u.period.to_string(),
                u.unit.to_string(),
                kind(u),
                item.to_string(),
                g.received.to_string(),
                g.handed_out.to_string(),
                g.on_hand.to_string(),
            ])?;
        }
    }
    out.flush()?;
    Ok(())
}
