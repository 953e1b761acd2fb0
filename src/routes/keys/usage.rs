//! The key page's usage panel (issue 18): a chart of verifications over 24 hours, 7 or 30
//! days drawn as inline SVG on the server (it reads without JavaScript, and a table says the
//! same for screen readers), counts by outcome, the actions used, the recent client
//! addresses, the old secret's use during a re-key grace period, and the least-privilege
//! comparison of granted with used actions.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use diesel::PgConnection;
use serde::Deserialize;

use crate::{
    db::models::{
        ApiAction, ApiKey,
        key_usage::{self, ActionUse},
    },
    error::AppError,
    keys::verifier::{Code, tally::OTHER_ACTION},
    views::time::Stamp,
};

/// The chart's span, chosen with `?period=` (24h when absent; anything else is a 400).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum Period {
    #[default]
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "7d")]
    Week,
    #[serde(rename = "30d")]
    Month,
}

impl Period {
    pub const ALL: [Period; 3] = [Period::Day, Period::Week, Period::Month];

    pub fn slug(self) -> &'static str {
        match self {
            Period::Day => "24h",
            Period::Week => "7d",
            Period::Month => "30d",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Period::Day => "24 hours",
            Period::Week => "7 days",
            Period::Month => "30 days",
        }
    }

    /// Length of one bar, and number of bars.
    fn buckets(self) -> (i64, usize) {
        match self {
            Period::Day => (3600, 24),
            Period::Week => (6 * 3600, 28),
            Period::Month => (86_400, 30),
        }
    }
}

/// The page's query string.
#[derive(Debug, Default, Deserialize)]
pub struct UsageQuery {
    pub period: Option<Period>,
}

/// A link of the period switch.
#[derive(Debug, Clone)]
pub struct PeriodLink {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

/// One bar of the chart (geometry already computed: the template only prints it).
#[derive(Debug, Clone)]
pub struct Bar {
    pub label: String,
    pub x: String,
    pub width: String,
    pub valid: i64,
    pub valid_y: String,
    pub valid_height: String,
    pub refused: i64,
    pub refused_y: String,
    pub refused_height: String,
}

/// A label on an axis.
#[derive(Debug, Clone)]
pub struct AxisLabel {
    pub text: String,
    pub x: String,
    pub y: String,
}

/// The chart as the template draws it.
#[derive(Debug, Clone)]
pub struct Chart {
    pub width: u32,
    pub height: u32,
    pub plot_left: String,
    pub plot_right: String,
    pub plot_bottom: String,
    pub bars: Vec<Bar>,
    pub y_labels: Vec<AxisLabel>,
    pub x_labels: Vec<AxisLabel>,
    /// What the chart shows, in words (its accessible description).
    pub summary: String,
    /// How long one bar is ("hour", "6 hours", "day").
    pub bucket: &'static str,
}

/// Verifications with one outcome.
#[derive(Debug, Clone)]
pub struct CodeRow {
    pub code: &'static str,
    pub count: i64,
    pub valid: bool,
}

/// One action as the page lists it.
#[derive(Debug, Clone)]
pub struct ActionRow {
    pub label: String,
    /// `label` is an action code (not "(other)" or no action).
    pub is_code: bool,
    pub in_period: i64,
    pub refused_in_period: i64,
    pub valid_30: i64,
    pub valid_90: i64,
    pub last_valid: Option<Stamp>,
    pub granted: bool,
}

/// A recent client address.
#[derive(Debug, Clone)]
pub struct AddressRow {
    pub address: String,
    pub first_seen: Stamp,
    pub last_seen: Stamp,
    pub uses: i64,
    /// Last use of the old secret from here during the current grace period.
    pub previous_secret: Option<Stamp>,
}

/// The old secret's use since the re-key.
#[derive(Debug, Clone)]
pub struct GraceUsage {
    pub total: i64,
    pub codes: Vec<CodeRow>,
    /// Addresses that used the old secret since the re-key.
    pub addresses: Vec<String>,
}

/// Granted against used actions.
#[derive(Debug, Clone)]
pub struct Privilege {
    pub granted: Vec<String>,
    pub used_30: Vec<String>,
    pub used_90: Vec<String>,
    /// Granted and not used in 90 days.
    pub unused_90: Vec<String>,
    /// Actions past the per-hour limit were counted together: which were used is unknown.
    pub uncertain: bool,
    /// The edit dialog with the actions used in 90 (and 30, when fewer) days preselected,
    /// when the key used fewer actions than it may.
    pub narrow_href: Option<String>,
    pub narrow_30_href: Option<String>,
    /// "the key is 3 days old", when it is younger than 90 days.
    pub young: Option<String>,
}

/// Everything the usage part of the key page shows.
#[derive(Debug, Clone)]
pub struct UsagePanel {
    pub period: Period,
    pub periods: Vec<PeriodLink>,
    pub chart: Chart,
    pub total: i64,
    pub valid: i64,
    pub refused: i64,
    pub codes: Vec<CodeRow>,
    pub actions: Vec<ActionRow>,
    pub addresses: Vec<AddressRow>,
    pub grace: Option<GraceUsage>,
    pub privilege: Privilege,
}

/// Which actions the key was validly verified for since `days` days before `now` (action
/// codes only), and whether some were counted together as "(other)".
pub fn used_actions(
    conn: &mut PgConnection,
    key_id: i64,
    now: DateTime<Utc>,
    days: i64,
) -> Result<(BTreeSet<String>, bool), AppError> {
    let since = (now - Duration::days(days)).date_naive();
    let rows = key_usage::actions(conn, key_id, since, since)?;
    Ok(used_in(&rows, |r| r.valid_90))
}

fn used_in(rows: &[ActionUse], count: impl Fn(&ActionUse) -> i64) -> (BTreeSet<String>, bool) {
    let used = rows
        .iter()
        .filter(|r| count(r) > 0 && !r.action.is_empty() && r.action != OTHER_ACTION)
        .map(|r| r.action.clone())
        .collect();
    let uncertain = rows.iter().any(|r| r.action == OTHER_ACTION && count(r) > 0);
    (used, uncertain)
}

/// Builds the panel of `key` (whose page is `href`) for `period`, as of `now`.
pub fn panel(
    conn: &mut PgConnection,
    key: &ApiKey,
    granted: &[String],
    href: &str,
    period: Period,
    now: DateTime<Utc>,
) -> Result<UsagePanel, AppError> {
    let (bucket_seconds, count) = period.buckets();
    let end_bucket = now.timestamp().div_euclid(bucket_seconds) + 1;
    let first_bucket = end_bucket - count as i64;
    let from = DateTime::from_timestamp(first_bucket * bucket_seconds, 0).expect("a recent time");
    let rows = key_usage::buckets(conn, key.id, from, bucket_seconds)?;
    let mut valid = vec![0i64; count];
    let mut refused = vec![0i64; count];
    let mut by_code = [0i64; Code::ALL.len()];
    // Per action: verifications in the period, and how many were refused.
    let mut by_action: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for row in &rows {
        let Some(slot) = row.bucket.checked_sub(first_bucket).and_then(|i| usize::try_from(i).ok()) else { continue };
        if slot >= count {
            continue;
        }
        let counts = by_action.entry(row.action.as_str()).or_default();
        counts.0 += row.count;
        if row.code == Code::Valid.as_str() {
            valid[slot] += row.count;
        } else {
            refused[slot] += row.count;
            counts.1 += row.count;
        }
        if let Some(i) = Code::ALL.iter().position(|c| c.as_str() == row.code) {
            by_code[i] += row.count;
        }
    }
    let (total_valid, total_refused) = (valid.iter().sum::<i64>(), refused.iter().sum::<i64>());
    let chart = chart(period, first_bucket, bucket_seconds, &valid, &refused, total_valid, total_refused);
    let codes = Code::ALL
        .iter()
        .zip(by_code)
        .filter(|(_, n)| *n > 0)
        .map(|(c, count)| CodeRow { code: c.as_str(), count, valid: *c == Code::Valid })
        .collect();

    let since_90 = (now - Duration::days(90)).date_naive();
    let since_30 = (now - Duration::days(30)).date_naive();
    let action_rows = key_usage::actions(conn, key.id, since_90, since_30)?;
    let granted_set: BTreeSet<&str> = granted.iter().map(String::as_str).collect();
    let mut names: BTreeSet<&str> = by_action.keys().copied().collect();
    names.extend(action_rows.iter().map(|r| r.action.as_str()));
    let actions = names
        .into_iter()
        .map(|action| {
            let (in_period, refused_in_period) = by_action.get(action).copied().unwrap_or_default();
            let valid = action_rows.iter().find(|r| r.action == action);
            ActionRow {
                label: if action.is_empty() { "(no action named)".into() } else { action.to_string() },
                is_code: !action.is_empty() && action != OTHER_ACTION,
                in_period,
                refused_in_period,
                valid_30: valid.map_or(0, |r| r.valid_30),
                valid_90: valid.map_or(0, |r| r.valid_90),
                last_valid: valid
                    .and_then(|r| r.last_valid)
                    .map(|day| Stamp::relative_to(day.and_hms_opt(0, 0, 0).expect("midnight").and_utc(), now)),
                granted: granted_set.contains(action),
            }
        })
        .collect();
    let (used_90, uncertain) = used_in(&action_rows, |r| r.valid_90);
    let (used_30, _) = used_in(&action_rows, |r| r.valid_30);
    let used_90: Vec<String> = used_90.into_iter().filter(|a| granted_set.contains(a.as_str())).collect();
    let used_30: Vec<String> = used_30.into_iter().filter(|a| granted_set.contains(a.as_str())).collect();
    let unused_90: Vec<String> = granted.iter().filter(|a| !used_90.contains(a)).cloned().collect();
    let narrows = !used_90.is_empty() && !unused_90.is_empty() && !uncertain && !key.is_expired_at(now);
    let privilege = Privilege {
        narrow_href: narrows.then(|| format!("{href}/edit?actions=used")),
        narrow_30_href: (narrows && !used_30.is_empty() && used_30.len() < used_90.len())
            .then(|| format!("{href}/edit?actions=used-30d")),
        young: Some((now - key.created_at).num_days()).filter(|d| *d < 90).map(|d| match d {
            1 => "the key is 1 day old".to_string(),
            d => format!("the key is {d} days old"),
        }),
        granted: granted.to_vec(),
        used_30,
        used_90,
        unused_90,
        uncertain,
    };

    let addresses: Vec<AddressRow> = key_usage::addresses(conn, key.id)?
        .into_iter()
        .map(|a| AddressRow {
            address: a.address.ip().to_string(),
            first_seen: Stamp::relative_to(a.first_seen_at, now),
            last_seen: Stamp::relative_to(a.last_seen_at, now),
            uses: a.uses,
            previous_secret: a
                .previous_secret_last_seen_at
                .filter(|at| key.rekeyed_at.is_some_and(|r| *at >= r) && key.is_rotating_at(now))
                .map(|at| Stamp::relative_to(at, now)),
        })
        .collect();
    let grace = match key.rekeyed_at {
        Some(rekeyed) if key.is_rotating_at(now) => {
            let hour = DateTime::from_timestamp(rekeyed.timestamp().div_euclid(3600) * 3600, 0).expect("a time");
            let codes: Vec<CodeRow> = key_usage::codes(conn, key.id, hour)?
                .into_iter()
                .filter(|c| c.previous_secret)
                .filter_map(|c| {
                    let code = Code::ALL.into_iter().find(|k| k.as_str() == c.code)?;
                    Some(CodeRow { code: code.as_str(), count: c.count, valid: code == Code::Valid })
                })
                .collect();
            Some(GraceUsage {
                total: codes.iter().map(|c| c.count).sum(),
                codes,
                addresses: addresses
                    .iter()
                    .filter(|a| a.previous_secret.is_some())
                    .map(|a| a.address.clone())
                    .collect(),
            })
        }
        _ => None,
    };

    Ok(UsagePanel {
        period,
        periods: Period::ALL
            .iter()
            .map(|p| PeriodLink {
                label: p.label(),
                href: format!("{href}?period={}", p.slug()),
                current: *p == period,
            })
            .collect(),
        chart,
        total: total_valid + total_refused,
        valid: total_valid,
        refused: total_refused,
        codes,
        actions,
        addresses,
        grace,
        privilege,
    })
}

const WIDTH: u32 = 720;
const HEIGHT: u32 = 220;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 28.0;

/// The smallest "round" number (1, 2 or 5 times a power of ten) at least `n`.
fn nice_ceiling(n: i64) -> i64 {
    let mut step = 1i64;
    loop {
        for m in [1, 2, 5] {
            if step.saturating_mul(m) >= n {
                return step.saturating_mul(m);
            }
        }
        step = step.saturating_mul(10);
    }
}

fn px(v: f64) -> String {
    format!("{v:.1}")
}

fn chart(
    period: Period,
    first_bucket: i64,
    bucket_seconds: i64,
    valid: &[i64],
    refused: &[i64],
    total_valid: i64,
    total_refused: i64,
) -> Chart {
    let count = valid.len();
    let plot_width = f64::from(WIDTH) - LEFT - RIGHT;
    let plot_height = f64::from(HEIGHT) - TOP - BOTTOM;
    let bottom = TOP + plot_height;
    let top_value = nice_ceiling(valid.iter().zip(refused).map(|(v, r)| v + r).max().unwrap_or(0).max(1));
    let slot = plot_width / count as f64;
    let scale = |n: i64| n as f64 / top_value as f64 * plot_height;
    let start = |i: usize| DateTime::from_timestamp((first_bucket + i as i64) * bucket_seconds, 0).expect("a time");
    let bars = (0..count)
        .map(|i| {
            let (v, r) = (valid[i], refused[i]);
            let (vh, rh) = (scale(v), scale(r));
            let at = start(i);
            let label = match period {
                Period::Day => at.format("%-d %b %H:00").to_string(),
                Period::Week => {
                    format!("{}–{}", at.format("%a %-d %b %H:00"), (at + Duration::hours(6)).format("%H:00"))
                }
                Period::Month => at.format("%a %-d %b").to_string(),
            };
            Bar {
                label,
                x: px(LEFT + slot * i as f64 + slot * 0.1),
                width: px(slot * 0.8),
                valid: v,
                valid_y: px(bottom - vh),
                valid_height: px(vh),
                refused: r,
                refused_y: px(bottom - vh - rh),
                refused_height: px(rh),
            }
        })
        .collect();
    let mut ticks = vec![0, top_value / 2, top_value];
    ticks.dedup();
    let y_labels = ticks
        .into_iter()
        .map(|n| AxisLabel { text: n.to_string(), x: px(LEFT - 6.0), y: px(bottom - scale(n) + 4.0) })
        .collect();
    let every = match period {
        Period::Day => 6,
        Period::Week => 4,
        Period::Month => 5,
    };
    let x_labels = (0..count)
        .filter(|i| i % every == 0)
        .map(|i| {
            let at = start(i);
            AxisLabel {
                text: match period {
                    Period::Day => at.format("%H:00").to_string(),
                    Period::Week | Period::Month => at.format("%-d %b").to_string(),
                },
                x: px(LEFT + slot * i as f64),
                y: px(bottom + 18.0),
            }
        })
        .collect();
    let bucket = match period {
        Period::Day => "hour",
        Period::Week => "6 hours",
        Period::Month => "day",
    };
    Chart {
        width: WIDTH,
        height: HEIGHT,
        plot_left: px(LEFT),
        plot_right: px(f64::from(WIDTH) - RIGHT),
        plot_bottom: px(bottom),
        bars,
        y_labels,
        x_labels,
        summary: format!(
            "Verifications per {bucket} over the last {} (UTC): {total_valid} valid, {total_refused} refused.",
            period.label()
        ),
        bucket,
    }
}

/// The actions a key may do, for comparing with those it used: its list, or the catalog
/// for an all-actions key.
pub fn granted_actions(conn: &mut PgConnection, key: &ApiKey, listed: &[String]) -> Result<Vec<String>, AppError> {
    if key.all_actions {
        Ok(ApiAction::list_active(conn)?.into_iter().map(|a| a.code).collect())
    } else {
        Ok(listed.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_ends_on_a_round_number() {
        assert_eq!([1, 2, 3, 7, 10, 11, 180, 501].map(nice_ceiling), [1, 2, 5, 10, 10, 20, 200, 1000]);
    }

    #[test]
    fn bars_stack_refused_on_valid_and_fit_the_plot() {
        let chart = chart(Period::Day, 0, 3600, &[0; 24], &[0; 24], 0, 0);
        assert_eq!(chart.bars.len(), 24);
        let mut valid = [0i64; 24];
        let mut refused = [0i64; 24];
        valid[3] = 8;
        refused[3] = 2;
        let chart = chart_of(&valid, &refused);
        let bar = &chart.bars[3];
        let (vy, vh, ry, rh): (f64, f64, f64, f64) = (
            bar.valid_y.parse().unwrap(),
            bar.valid_height.parse().unwrap(),
            bar.refused_y.parse().unwrap(),
            bar.refused_height.parse().unwrap(),
        );
        assert!((ry + rh - vy).abs() < 0.2, "refused sits on valid");
        assert!((vh + rh - (f64::from(HEIGHT) - TOP - BOTTOM)).abs() < 0.2, "the highest bar reaches the top");
        assert_eq!(chart.x_labels.len(), 4);
    }

    fn chart_of(valid: &[i64], refused: &[i64]) -> Chart {
        chart(Period::Day, 0, 3600, valid, refused, valid.iter().sum(), refused.iter().sum())
    }
}
