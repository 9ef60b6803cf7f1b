//! The audit's per-point figures from groups of points: the points of one station, day,
//! load point (step name, port, MPE) and acceptance share one group, which holds their
//! moments (and, where the backend does not bin them itself, their errors). Every
//! figure is a merge of groups: a load point's statistics merge its groups over the
//! stations and days, a control chart's day merges its station's accepted groups over
//! the ports. A backend fills the groups the way it reads fastest: the embedded store
//! from its Parquet files, a file per worker (a 100 000-run year is 2.2 million points);
//! PostgreSQL from a stream its server's workers fill in parallel.
//!
//! Before any figure is taken the groups are settled into the order of their keys, each
//! group's errors sorted ([`PointGroups::settle`]): a store gives the same figures to the
//! last digit every time it is audited, and both backends give the same figures for the
//! same points.

use crate::audit::{
    ChartDay, ControlChart, HistBin, Histogram, LoadPointStats, cpk, cpk_interval, histogram_bins,
};
use chrono::NaiveDate;
use meterbench_procedure::CpkRule;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// Mean, sample standard deviation (n − 1), minimum and maximum of a group of errors,
/// accumulated with Welford's update (one pass, no cancellation of large sums) and
/// merged with Chan, Golub and LeVeque's pairwise formula.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Moments {
    pub n: i64,
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
    pub min: f64,
    pub max: f64,
}

impl Default for Moments {
    fn default() -> Self {
        Moments {
            n: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Moments {
    pub fn add(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    /// Add the values `o` was accumulated from (Chan et al., "Algorithms for computing
    /// the sample variance", 1983: exact in exact arithmetic, stable in floating point).
    pub fn merge(&mut self, o: &Moments) {
        if o.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *o;
            return;
        }
        let n = self.n + o.n;
        let delta = o.mean - self.mean;
        self.mean += delta * (o.n as f64 / n as f64);
        self.m2 += o.m2 + delta * delta * (self.n as f64 * o.n as f64 / n as f64);
        self.n = n;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    /// Sample variance; `None` below two values.
    pub fn variance(&self) -> Option<f64> {
        (self.n >= 2).then(|| self.m2 / (self.n - 1) as f64)
    }

    pub fn std_dev(&self) -> Option<f64> {
        self.variance().map(f64::sqrt)
    }
}

/// Names seen once each: a year of points shares a few hundred station, step and port
/// names. Fx hashing: a name is looked up three times per point (SipHash took a tenth
/// of the audit of 20 000 runs); the names are the store's own, not an attacker's.
#[derive(Debug, Default)]
pub(crate) struct Names {
    texts: Vec<String>,
    ids: FxHashMap<String, u32>,
}

impl Names {
    pub fn id(&mut self, s: &str) -> u32 {
        if let Some(id) = self.ids.get(s) {
            return *id;
        }
        let id = self.texts.len() as u32;
        self.texts.push(s.to_string());
        self.ids.insert(s.to_string(), id);
        id
    }

    pub fn text(&self, id: u32) -> &str {
        &self.texts[id as usize]
    }
}

/// What a group of points shares. The MPE is a key by its bits: the same limit is the
/// same f64 in every file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct GroupKey {
    pub station: u32,
    pub date: NaiveDate,
    pub step_name: u32,
    pub port: u32,
    pub mpe_bits: u64,
    pub accepted: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// The lowest step index among the points (a load point's place in the tables).
    pub step_index: u32,
    pub moments: Moments,
    /// The errors (for the histograms, and to settle the moments).
    pub errors: Vec<f64>,
}

/// The points of an audit in groups (see the module docs).
#[derive(Debug, Default)]
pub struct PointGroups {
    pub(crate) names: Names,
    index: FxHashMap<GroupKey, usize>,
    pub(crate) groups: Vec<(GroupKey, Group)>,
}

impl PointGroups {
    /// How many points the figures rest on.
    pub fn points(&self) -> i64 {
        self.groups.iter().map(|(_, g)| g.moments.n).sum()
    }

    pub(crate) fn key(
        &mut self,
        station: &str,
        date: NaiveDate,
        step_name: &str,
        port: &str,
        mpe_percent: f64,
        accepted: bool,
    ) -> GroupKey {
        GroupKey {
            station: self.names.id(station),
            date,
            step_name: self.names.id(step_name),
            port: self.names.id(port),
            mpe_bits: mpe_percent.to_bits(),
            accepted,
        }
    }

    fn group(&mut self, key: GroupKey, step_index: u32) -> &mut Group {
        let at = *self.index.entry(key).or_insert_with(|| {
            self.groups.push((
                key,
                Group {
                    step_index,
                    moments: Moments::default(),
                    errors: Vec::new(),
                },
            ));
            self.groups.len() - 1
        });
        let g = &mut self.groups[at].1;
        g.step_index = g.step_index.min(step_index);
        g
    }

    /// Put each group's errors in ascending order: a reader on a thread of its own does
    /// so before its groups are appended, and [`PointGroups::settle`]'s sort then only
    /// merges the readers' ordered runs (the sort took a third of the audit's time after
    /// its reads, on one thread).
    pub(crate) fn order_errors(&mut self) {
        for (_, g) in &mut self.groups {
            g.errors.sort_by(f64::total_cmp);
        }
    }

    /// Add one point.
    pub(crate) fn add_point(&mut self, key: GroupKey, step_index: u32, error_percent: f64) {
        let g = self.group(key, step_index);
        g.moments.add(error_percent);
        g.errors.push(error_percent);
    }

    /// Put the groups in the order of their keys' texts, and each group's errors in
    /// ascending order with its moments taken again over them: after this the figures
    /// do not depend on the order the points were read in (a PostgreSQL server's
    /// parallel workers hand them out in a different order every time), and two stores
    /// holding the same points give the same figures to the last digit.
    pub(crate) fn settle(&mut self) {
        let names = &self.names;
        self.groups.sort_by(|(a, _), (b, _)| {
            (
                names.text(a.station),
                a.date,
                names.text(a.step_name),
                names.text(a.port),
            )
                .cmp(&(
                    names.text(b.station),
                    b.date,
                    names.text(b.step_name),
                    names.text(b.port),
                ))
                .then(f64::from_bits(a.mpe_bits).total_cmp(&f64::from_bits(b.mpe_bits)))
                .then(a.accepted.cmp(&b.accepted))
        });
        // The groups in two halves of about as many points, each on a thread (a year of
        // points is millions of errors to put in order and sum again).
        let total: usize = self.groups.iter().map(|(_, g)| g.errors.len()).sum();
        let mut half = 0;
        let mut counted = 0;
        while half < self.groups.len() && 2 * counted < total {
            counted += self.groups[half].1.errors.len();
            half += 1;
        }
        let (first, second) = self.groups.split_at_mut(half);
        let settle = |groups: &mut [(GroupKey, Group)]| {
            for (_, g) in groups {
                g.errors.sort_by(f64::total_cmp);
                let mut m = Moments::default();
                g.errors.iter().for_each(|e| m.add(*e));
                g.moments = m;
            }
        };
        std::thread::scope(|s| {
            let other = s.spawn(|| settle(second));
            settle(first);
            crate::audit::joined(other);
        });
        for (i, (key, _)) in self.groups.iter().enumerate() {
            self.index.insert(*key, i);
        }
    }

    /// Add every group of `other` after this one's (the next file read).
    pub(crate) fn append(&mut self, other: PointGroups) {
        let PointGroups { names, groups, .. } = other;
        let ids: Vec<u32> = names.texts.iter().map(|t| self.names.id(t)).collect();
        for (k, g) in groups {
            let key = GroupKey {
                station: ids[k.station as usize],
                step_name: ids[k.step_name as usize],
                port: ids[k.port as usize],
                ..k
            };
            let into = self.group(key, g.step_index);
            into.moments.merge(&g.moments);
            into.errors.extend_from_slice(&g.errors);
        }
    }
}

/// Statistics, Cpk and histogram of every load point (step name, port, MPE).
pub(crate) fn load_point_stats(
    groups: &PointGroups,
    max_bins: usize,
    rule: &CpkRule,
) -> Vec<LoadPointStats> {
    struct LoadPoint {
        step_index: u32,
        moments: Moments,
        rejected: i64,
        members: Vec<usize>,
    }
    let mut points: FxHashMap<(u32, u32, u64), LoadPoint> = FxHashMap::default();
    let mut order = Vec::new();
    for (i, (k, g)) in groups.groups.iter().enumerate() {
        let key = (k.step_name, k.port, k.mpe_bits);
        let lp = points.entry(key).or_insert_with(|| {
            order.push(key);
            LoadPoint {
                step_index: g.step_index,
                moments: Moments::default(),
                rejected: 0,
                members: Vec::new(),
            }
        });
        lp.step_index = lp.step_index.min(g.step_index);
        lp.moments.merge(&g.moments);
        if !k.accepted {
            lp.rejected += g.moments.n;
        }
        lp.members.push(i);
    }
    let mut out = Vec::with_capacity(order.len());
    for key in order {
        let (step_name, port, mpe_bits) = key;
        let lp = &points[&key];
        let mpe = f64::from_bits(mpe_bits);
        let m = lp.moments;
        let std_dev = m.std_dev().filter(|s| s.is_finite());
        let (lo, w, nb) = histogram_bins(m.min, m.max, m.n, std_dev, mpe, max_bins);
        let mut histogram = Histogram {
            width: w,
            bins: (0..nb)
                .map(|k| HistBin {
                    lo: lo + k as f64 * w,
                    hi: lo + (k + 1) as f64 * w,
                    count: 0,
                })
                .collect(),
            underflow: 0,
            overflow: 0,
        };
        for g in &lp.members {
            for e in &groups.groups[*g].1.errors {
                histogram.tally(bin_position(*e, lo, w), 1);
            }
        }
        let cpk_withheld = (m.n as u64) < rule.min_n;
        let cpk = cpk(m.mean, std_dev, mpe).filter(|_| !cpk_withheld);
        let interval = cpk.map(|c| cpk_interval(c, m.n, rule.confidence));
        out.push(LoadPointStats {
            step_index: i64::from(lp.step_index),
            step_name: groups.names.text(step_name).to_string(),
            port: groups.names.text(port).to_string(),
            mpe_percent: mpe,
            n: m.n,
            mean: m.mean,
            std_dev,
            min: m.min,
            max: m.max,
            rejected: lp.rejected,
            cpk,
            cpk_low: interval.map(|i| i.0),
            cpk_high: interval.map(|i| i.1),
            cpk_withheld,
            below_cpk_target: false,
            histogram,
            histogram_plot: None,
        });
    }
    out.sort_by(|a, b| {
        (a.step_index, &a.step_name, &a.port)
            .cmp(&(b.step_index, &b.step_name, &b.port))
            .then(a.mpe_percent.total_cmp(&b.mpe_percent))
    });
    out
}

/// Where `e` falls among bins of `width` from `lo`, floored: below 0 is under the first
/// bin (left-closed, with a hair of tolerance so that a value printed on an edge lands
/// above it).
pub(crate) fn bin_position(e: f64, lo: f64, width: f64) -> f64 {
    ((e - lo) / width + 1e-9).floor()
}

impl Histogram {
    /// Count `count` values at the floored position `at` (see [`bin_position`]).
    pub(crate) fn tally(&mut self, at: f64, count: u64) {
        let n = self.bins.len() as i64;
        if at < 0.0 {
            self.underflow += count;
        } else {
            match (at as i64).min(n) {
                k if k >= n => self.overflow += count,
                k => self.bins[k as usize].count += count,
            }
        }
    }
}

/// Control charts of the daily mean error per station and load point (ports pooled).
/// Points out of limits are left out: a faulty meter says nothing about the bench, and
/// its error would swamp the within-day spread the limits come from.
pub(crate) fn control_charts(groups: &PointGroups, from: NaiveDate) -> Vec<ControlChart> {
    struct Chart {
        step_index: u32,
        mpe_percent: f64,
        days: BTreeMap<NaiveDate, Moments>,
    }
    let mut charts: FxHashMap<(u32, u32), Chart> = FxHashMap::default();
    for (k, g) in groups.groups.iter().filter(|(k, _)| k.accepted) {
        let mpe = f64::from_bits(k.mpe_bits);
        let c = charts
            .entry((k.station, k.step_name))
            .or_insert_with(|| Chart {
                step_index: g.step_index,
                mpe_percent: mpe,
                days: BTreeMap::new(),
            });
        c.step_index = c.step_index.min(g.step_index);
        c.mpe_percent = c.mpe_percent.max(mpe);
        c.days.entry(k.date).or_default().merge(&g.moments);
    }

    let mut out = Vec::with_capacity(charts.len());
    for ((station, step_name), chart) in charts {
        let days: Vec<(NaiveDate, Moments)> = chart.days.into_iter().collect();
        let total_n: i64 = days.iter().map(|(_, m)| m.n).sum();
        let center = days.iter().map(|(_, m)| m.n as f64 * m.mean).sum::<f64>() / total_n as f64;
        // The within-day spread: the days' variances pooled by their degrees of freedom.
        let (ss, dof) = days
            .iter()
            .filter_map(|(_, m)| {
                m.variance()
                    .map(|v| (v * (m.n - 1) as f64, (m.n - 1) as f64))
            })
            .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
        // Not finite (errors so large their squares overflow, set by hand): no limits.
        let sigma = (dof > 0.0)
            .then(|| (ss / dof).sqrt())
            .filter(|s| s.is_finite());
        let chart_days: Vec<ChartDay> = days
            .iter()
            .map(|(date, m)| {
                let half = sigma.map(|s| 3.0 * s / (m.n as f64).sqrt());
                let (lcl, ucl) = (half.map(|h| center - h), half.map(|h| center + h));
                let out_of_control =
                    matches!((lcl, ucl), (Some(l), Some(u)) if m.mean < l || m.mean > u);
                ChartDay {
                    date: *date,
                    n: m.n,
                    mean: m.mean,
                    lcl,
                    ucl,
                    out_of_control,
                }
            })
            .collect();
        let daily: Vec<(f64, f64, f64)> = days
            .iter()
            .map(|(date, m)| ((*date - from).num_days() as f64, m.n as f64, m.mean))
            .collect();
        let (slope, drift_suspected) = trend(&daily, sigma, dof);
        let span = match (days.first(), days.last()) {
            (Some(a), Some(b)) => (b.0 - a.0).num_days() as f64,
            _ => 0.0,
        };
        let drift = slope.map(|s| s * span);
        out.push(ControlChart {
            out_of_control_days: chart_days.iter().filter(|d| d.out_of_control).count(),
            station: groups.names.text(station).to_string(),
            step_index: i64::from(chart.step_index),
            step_name: groups.names.text(step_name).to_string(),
            mpe_percent: chart.mpe_percent,
            center,
            sigma_within: sigma,
            slope_percent_per_day: slope,
            drift_over_range_percent: drift,
            drift_suspected,
            days: chart_days,
            plot: None,
        });
    }
    out.sort_by(|a, b| {
        (&a.station, a.step_index, &a.step_name).cmp(&(&b.station, b.step_index, &b.step_name))
    });
    out
}

/// Two-sided probability of a trend flagged where there is none: that of a point
/// outside 3σ control limits (0.27 %).
const DRIFT_FALSE_ALARM: f64 = 0.0027;

/// The trend of the daily means `(day, n, mean)` and whether it is more than chance. A
/// day of n results has a mean of variance σ²/n, so the line is fitted weighted by n; its
/// slope's standard error is σ / √Σ n (x − x̄)², σ the pooled within-day deviation of
/// `dof` degrees of freedom; the slope is flagged when it lies beyond Student's t at
/// [`DRIFT_FALSE_ALARM`] for those degrees of freedom. (The drift over the range against
/// 3σ/√n̄, the rule before, ignored how many days the line rests on: simulated, it flagged
/// a stable station's three-day range one time in nine and a week's one in thirty.)
pub(crate) fn trend(
    daily: &[(f64, f64, f64)],
    sigma: Option<f64>,
    dof: f64,
) -> (Option<f64>, bool) {
    let w: f64 = daily.iter().map(|d| d.1).sum();
    if daily.len() < 2 || w <= 0.0 {
        return (None, false);
    }
    let mx = daily.iter().map(|d| d.1 * d.0).sum::<f64>() / w;
    let my = daily.iter().map(|d| d.1 * d.2).sum::<f64>() / w;
    let sxx: f64 = daily.iter().map(|d| d.1 * (d.0 - mx).powi(2)).sum();
    let sxy: f64 = daily.iter().map(|d| d.1 * (d.0 - mx) * (d.2 - my)).sum();
    if sxx <= 0.0 {
        return (None, false);
    }
    let slope = sxy / sxx;
    let suspected = match sigma {
        Some(s) if s > 0.0 && dof >= 1.0 && daily.len() >= 3 => {
            use statrs::distribution::{ContinuousCDF, StudentsT};
            let se = s / sxx.sqrt();
            StudentsT::new(0.0, 1.0, dof)
                .map(|t| t.inverse_cdf(1.0 - DRIFT_FALSE_ALARM / 2.0))
                .is_ok_and(|critical| slope.abs() > critical * se)
        }
        _ => false,
    };
    (Some(slope), suspected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(xs: &[f64]) -> Moments {
        let mut m = Moments::default();
        xs.iter().for_each(|x| m.add(*x));
        m
    }

    #[test]
    fn merged_moments_are_those_of_all_the_values() {
        // By hand: 1, 2, 3, 4, 10 → mean 4, squared deviations 9 + 4 + 1 + 0 + 36 = 50.
        let mut a = moments(&[1.0, 2.0]);
        a.merge(&moments(&[3.0, 4.0, 10.0]));
        assert_eq!((a.n, a.m2, a.min, a.max), (5, 50.0, 1.0, 10.0));
        assert!((a.mean - 4.0).abs() < 1e-15);
        let mut empty = Moments::default();
        empty.merge(&a);
        assert_eq!(empty, a);
        a.merge(&Moments::default());
        assert_eq!(a.n, 5);
    }

    #[test]
    fn merging_in_pieces_agrees_with_one_pass_over_large_offsets() {
        // Errors around a large offset, where a sum of squares would cancel.
        let xs: Vec<f64> = (0..1000)
            .map(|i| 1e6 + ((i * 7919) % 1000) as f64 * 1e-3)
            .collect();
        let whole = moments(&xs);
        let mut pieces = Moments::default();
        for chunk in xs.chunks(37) {
            pieces.merge(&moments(chunk));
        }
        assert_eq!(pieces.n, whole.n);
        assert!((pieces.mean - whole.mean).abs() < 1e-9);
        assert!((pieces.m2 - whole.m2).abs() < 1e-6 * whole.m2);
    }

    #[test]
    fn positions_fall_in_the_bins_they_print_in() {
        let mut h = Histogram {
            width: 0.1,
            bins: (0..3)
                .map(|k| HistBin {
                    lo: k as f64 * 0.1,
                    hi: (k + 1) as f64 * 0.1,
                    count: 0,
                })
                .collect(),
            underflow: 0,
            overflow: 0,
        };
        for e in [-0.05, 0.0, 0.1, 0.15, 0.2999, 0.3, 0.7] {
            h.tally(bin_position(e, 0.0, 0.1), 1);
        }
        // 0.1 and 0.3 sit on edges (0.1 / 0.1 is 1 in floating point, 0.3 / 0.1 is
        // 2.9999999999999996): the hair puts each above its edge.
        let counts: Vec<u64> = h.bins.iter().map(|b| b.count).collect();
        assert_eq!((h.underflow, counts, h.overflow), (1, vec![1, 2, 1], 2));
    }
}
