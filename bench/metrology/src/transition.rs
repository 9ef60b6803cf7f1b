//! Transition-point calibration of a device whose readings are quantised (the Xemex
//! CSP1 reports whole amperes once a second).
//!
//! Averaging such readings at one current cannot resolve the device's error below its
//! step: at 4.3 A a good sensor and one 5 % high both read 4 every time. What can be
//! located finely is where the reading flips: the device shows n + 1 instead of n when
//! its internal value crosses the boundary b (n + ½ when it rounds, n + 1 when it
//! truncates; the fixture says which). Step the reference current x, ask of each
//! reading only whether it is above (≥ n + 1) or below (≤ n), and find the reference
//! current μ at which the device's value is b. There the device reads b while the
//! truth is μ: its error is e = (b − μ) / μ × 100 %.
//!
//! The device's noise smears the flip. Each reading's internal value is x·(1 + g) plus
//! noise, so P(above | x) = Φ((x − μ) / σ′), a probit curve whose width σ′ is not known
//! in advance and differs between sensors. [`TransitionSearch`] keeps the posterior of
//! (μ, σ′) on a grid, chooses each probe to be the most informative, and stops when μ is
//! known to the target standard uncertainty. Its posterior standard deviation of μ is
//! the type B-like "transition location" term of [`transition_budget`].

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use statrs::function::erf::erfc;

use crate::uncertainty::{Contribution, UncertaintyBudget};

/// Log-posterior cells further than this below the best cell are dropped for good:
/// e^−40 ≈ 4·10⁻¹⁸ of the best cell's weight is below what a sum of doubles keeps.
const PRUNE_NATS: f64 = 40.0;

/// Ratio between neighbouring σ′ grid points: fine enough that the posterior of μ does
/// not step visibly between them, coarse enough to keep the grid small.
const SIGMA_RATIO: f64 = std::f64::consts::SQRT_2;

/// The fewest μ cells a search accepts.
const MIN_GRID_POINTS: usize = 16;

/// Probes, all answered the same way, before the search may conclude that the
/// transition is outside the bracket.
const OUTSIDE_MIN_PROBES: usize = 3;

/// Grid steps from an edge within which a posterior median counts as piled at it.
const OUTSIDE_EDGE_STEPS: f64 = 2.0;

/// Posterior quantiles of μ tried as the next probe.
const CANDIDATE_QUANTILES: [f64; 21] = [
    0.02, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70, 0.75,
    0.80, 0.85, 0.90, 0.95, 0.98,
];

/// Which end of the bracket a transition lies beyond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BracketEdge {
    /// Below the bracket's low end: every probe read above; the device reads high.
    Low,
    /// Above the bracket's high end: every probe read below; the device reads low.
    High,
}

/// Why a search stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The posterior standard deviation of μ reached the target.
    UncertaintyReached,
    /// The probe budget is spent; the estimate carries whatever uncertainty it reached.
    ProbeLimit,
    /// The posterior piled against `edge` (every answer the same, or a narrow posterior
    /// leaning on it): the transition is beyond it, or so near it (within about σ′, or
    /// a couple of target uncertainties) that the bracket, not the answers, bounds it.
    /// The search bounds μ there, it does not locate it: widen the bracket and search
    /// again, or take the device's error to be beyond the limit the bracket came from.
    OutsideBracket { edge: BracketEdge },
}

/// What one search is set up with. Every figure comes from the procedure or fixture.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TransitionSearchConfig {
    /// The device value at which its reading flips (n + 0.5 for rounding, n + 1 for
    /// truncation), device units (A).
    pub boundary_a: f64,
    /// Reference currents (low, high) the transition must lie between, A: the search
    /// probes only inside, and its prior of μ is uniform over it. Derive it from the
    /// acceptance limit L, b / (1 + L) … b / (1 − L), widened by three σ′ or more of
    /// the noise expected: a transition within about σ′ of an edge ends
    /// [`StopReason::OutsideBracket`], so a device just at the limit is otherwise taken
    /// for one beyond it.
    pub bracket_a: (f64, f64),
    /// The standard uncertainty of μ at which the search stops, A.
    pub target_u_a: f64,
    /// The most probes (readings) the search may ask for.
    pub max_probes: usize,
    /// Cells of the μ grid across the bracket. A cell's width enters u(μ) as
    /// width / √12, so keep it a tenth of `target_u_a` or less; 1000–4000 is usual.
    pub grid_points: usize,
    /// The range (smallest, largest) of the probit width σ′ the posterior considers, A,
    /// log-uniform prior. `None`: one μ cell up to a quarter of the bracket. A known
    /// noise floor of the device type belongs here: it keeps a noisy sensor's lucky
    /// runs of consistent answers from passing for a noise-free one.
    pub sigma_range_a: Option<(f64, f64)>,
}

/// Why a configuration cannot be searched.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransitionConfigError {
    #[error("the boundary must be a positive finite value, not {0}")]
    Boundary(f64),
    #[error("the bracket must be 0 < low < high, finite; got ({0}, {1})")]
    Bracket(f64, f64),
    #[error("the target uncertainty must be positive and finite, not {0}")]
    TargetUncertainty(f64),
    #[error("a search needs at least one probe")]
    NoProbes,
    #[error("the μ grid needs at least {MIN_GRID_POINTS} points, not {0}")]
    GridPoints(usize),
    #[error("the σ′ range must be 0 < smallest ≤ largest, finite; got ({0}, {1})")]
    SigmaRange(f64, f64),
}

/// Where a search stands: the posterior of μ summarised.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TransitionEstimate {
    /// Posterior mean of μ, the reference current at which the device's value is the
    /// boundary, A.
    pub mu_a: f64,
    /// Posterior standard deviation of μ, A: the standard uncertainty of the location.
    /// Infinite while every answer has been the same (such a search has not seen the
    /// transition) and after [`StopReason::OutsideBracket`]: both bound μ on one side
    /// only. JSON writes an infinity as null.
    pub u_mu_a: f64,
    /// Probes observed.
    pub probes: usize,
    /// Why the search stopped; `None` while it is still running.
    pub stop_reason: Option<StopReason>,
    /// Posterior mean of the probit width σ′, A: the device's noise referred to the
    /// reference current.
    pub sigma_a: f64,
    /// Central 95 % posterior interval of μ, A; open (0 or infinity) on the side a
    /// one-sided search has not bounded.
    pub interval_95: (f64, f64),
}

/// The posterior summaries a search keeps between observations.
#[derive(Debug, Clone, Default)]
struct Summary {
    mean: f64,
    sd: f64,
    sigma_mean: f64,
    /// Cumulative posterior mass of μ at each cell's upper edge, normalised to 1.
    cdf: Vec<f64>,
    /// Per σ′ column: posterior mass (normalised), mean and variance of μ.
    columns: Vec<(f64, f64, f64)>,
}

/// A deterministic Bayesian search for one channel's transition point.
///
/// The posterior of (μ, σ′) lives on a grid: `grid_points` cells of μ across the bracket
/// times a log-spaced grid of σ′. Each answer multiplies it by Φ((x − μ)/σ′) or its
/// complement (in logs); σ′ is a nuisance parameter, summed out for every estimate of μ.
///
/// The probe is not simply the posterior median. Bisection at the median is the best a
/// search can do when σ′ is known, but it cannot tell a noise-free device from a noisy
/// one: answers at the median are equally well explained by a sharp step anywhere in
/// the remaining interval or by a wide probit centred in it. With σ′ unknown the broad
/// hypotheses never lose weight, u(μ) shrinks like σ′_max/√n rather than halving, and
/// a noisy sensor's σ′ is poorly estimated, so u(μ) misstates the error. (Simulated:
/// a noise-free sensor in a 0.9 A bracket with a 5 mA target needed up to 134 probes at
/// the median against 19 here; sensors with σ′ = 5 mA in a 0.78 A bracket with a 10 mA
/// target a median of 34 against 14.) Each
/// probe is instead the candidate, among posterior quantiles of μ from 2 % to 98 % (the
/// median included), that minimises the expected entropy of the joint posterior of
/// (μ, σ′) after its answer: the Psi method of Kontsevich and Tyler (Vision Research
/// 39, 1999). It bisects while μ is coarse and probes off the median where an answer
/// tells σ′ apart; for a noise-free device it is a bisection plus the few off-centre
/// probes that rule out a wide curve. The expected entropy treats each σ′ column's
/// posterior of μ as normal, for which a probit answer's update is closed-form; the
/// posterior itself is updated exactly on the grid.
///
/// u(μ) is a posterior standard deviation, and the search stops on it. Sequential
/// stopping favours runs whose answers happened to look sharper than the device is:
/// in simulation (see the tests) ±2 u(μ) covered the true μ in 100 %, 98 % and 91 %
/// of searches for σ′ = 5, 20 and 50 mA (96.5 % over all). A known noise floor passed in
/// `sigma_range_a` removes that shortfall at no cost in probes (400 sensors with
/// σ′ = 50 mA: 92 % without a floor, 95 % with a 20 mA one, a median of 61 probes both).
///
/// The search is deterministic: the same answers give the same probes.
#[derive(Debug, Clone)]
pub struct TransitionSearch {
    config: TransitionSearchConfig,
    lo: f64,
    step: f64,
    n: usize,
    sigmas: Vec<f64>,
    /// Log posterior (up to a constant), σ′ column j at `j * n .. (j + 1) * n`.
    log_post: Vec<f64>,
    /// Per σ′ column, the cells `[start, end)` still carrying weight. The posterior of
    /// μ within a column is log-concave (a uniform prior on an interval times
    /// log-concave Φ factors), so the cells above any level form one interval.
    alive: Vec<(usize, usize)>,
    probes: usize,
    n_above: usize,
    n_below: usize,
    summary: Summary,
    stop: Option<StopReason>,
}

impl TransitionSearch {
    pub fn new(config: TransitionSearchConfig) -> Result<Self, TransitionConfigError> {
        let (lo, hi) = config.bracket_a;
        if !(config.boundary_a.is_finite() && config.boundary_a > 0.0) {
            return Err(TransitionConfigError::Boundary(config.boundary_a));
        }
        if !(lo.is_finite() && hi.is_finite() && lo > 0.0 && hi > lo) {
            return Err(TransitionConfigError::Bracket(lo, hi));
        }
        if !(config.target_u_a.is_finite() && config.target_u_a > 0.0) {
            return Err(TransitionConfigError::TargetUncertainty(config.target_u_a));
        }
        if config.max_probes == 0 {
            return Err(TransitionConfigError::NoProbes);
        }
        if config.grid_points < MIN_GRID_POINTS {
            return Err(TransitionConfigError::GridPoints(config.grid_points));
        }
        let n = config.grid_points;
        let step = (hi - lo) / n as f64;
        let (s_min, s_max) = config.sigma_range_a.unwrap_or((step, (hi - lo) / 4.0));
        if !(s_min.is_finite() && s_max.is_finite() && s_min > 0.0 && s_max >= s_min) {
            return Err(TransitionConfigError::SigmaRange(s_min, s_max));
        }
        let m = 1 + ((s_max / s_min).ln() / SIGMA_RATIO.ln()).ceil() as usize;
        let sigmas: Vec<f64> = if m == 1 {
            vec![s_min]
        } else {
            (0..m)
                .map(|j| s_min * (s_max / s_min).powf(j as f64 / (m - 1) as f64))
                .collect()
        };
        let mut search = TransitionSearch {
            config,
            lo,
            step,
            n,
            log_post: vec![0.0; n * sigmas.len()],
            alive: vec![(0, n); sigmas.len()],
            sigmas,
            probes: 0,
            n_above: 0,
            n_below: 0,
            summary: Summary::default(),
            stop: None,
        };
        search.summarise();
        Ok(search)
    }

    pub fn config(&self) -> &TransitionSearchConfig {
        &self.config
    }

    /// Probes observed so far.
    pub fn probes(&self) -> usize {
        self.probes
    }

    pub fn stop_reason(&self) -> Option<StopReason> {
        self.stop
    }

    /// The σ′ values the posterior is kept on, A.
    pub fn sigma_grid_a(&self) -> &[f64] {
        &self.sigmas
    }

    /// The reference current to set next, A, or `None` when the search has finished.
    /// The caller may not be able to set it exactly; it reports what it set to
    /// [`observe`](Self::observe).
    pub fn next_probe(&self) -> Option<f64> {
        if self.stop.is_some() {
            return None;
        }
        Some(self.most_informative_probe())
    }

    /// One reading taken at the reference current `x_a` actually set (not the one
    /// asked for: a source's setpoint resolution is then no approximation):
    /// `above` when it read n + 1 or more, otherwise (n or less) below. A reading
    /// taken after the search has finished still updates the posterior; the stop
    /// reason stays.
    ///
    /// # Panics
    /// When `x_a` is not finite.
    pub fn observe(&mut self, x_a: f64, above: bool) {
        assert!(
            x_a.is_finite(),
            "a probe's reference current must be finite"
        );
        self.probes += 1;
        if above {
            self.n_above += 1;
        } else {
            self.n_below += 1;
        }
        let table = ln_phi_table();
        let sign = if above { 1.0 } else { -1.0 };
        for (j, &sigma) in self.sigmas.iter().enumerate() {
            let (a, b) = self.alive[j];
            // t = ±(x − μ)/σ′ for cell i; where t ≥ the table's top, ln Φ(t) is 0 and the
            // cell keeps its value: only the cells on the far side of ~8σ′ change.
            let edge = (x_a - self.lo - sign * LnPhiTable::HIGH * sigma) / self.step - 0.5;
            let (from, to) = if above {
                ((edge.floor() + 1.0).clamp(a as f64, b as f64) as usize, b)
            } else {
                (a, edge.ceil().clamp(a as f64, b as f64) as usize)
            };
            let column = &mut self.log_post[j * self.n..(j + 1) * self.n];
            let t_from = sign * (x_a - self.lo - (from as f64 + 0.5) * self.step) / sigma;
            let dt = sign * self.step / sigma;
            for (k, cell) in column[from..to].iter_mut().enumerate() {
                *cell += table.ln_cdf(t_from - k as f64 * dt);
            }
        }
        self.summarise();
        if self.stop.is_none() {
            self.stop = self.stop_rule();
        }
    }

    /// Whether a search has stopped and why, after the latest answer.
    ///
    /// Outside the bracket, "near" being max(2 grid steps, the target uncertainty):
    /// - at least [`OUTSIDE_MIN_PROBES`] answers, all the same, and the posterior median
    ///   of μ near the edge they point to. A transition inside the bracket gives both
    ///   answers once the probes cross it; one that probes this close to the edge have
    ///   not crossed is beyond it, or so near it that the bracket cannot say which;
    /// - or the posterior reached the target but its 95 % interval ends near an edge. A
    ///   noisy device's transition just beyond the edge still gives some answers of the
    ///   other kind there, and the posterior, held inside by the bracket, piles against
    ///   the edge and can look narrow. In simulation (σ′ = 20 and 50 mA, transitions
    ///   0 to 2σ′ beyond the edge) every search that would have reported the target
    ///   had its interval end within one grid step of the edge.
    ///
    /// The target is reached only once both answers have been seen: a one-sided
    /// posterior piles against an edge and can look narrow without locating anything.
    fn stop_rule(&self) -> Option<StopReason> {
        let (lo, hi) = self.config.bracket_a;
        let one_sided = self.n_above == 0 || self.n_below == 0;
        let near = (OUTSIDE_EDGE_STEPS * self.step).max(self.config.target_u_a);
        if one_sided && self.probes >= OUTSIDE_MIN_PROBES {
            let median = self.quantile(0.5);
            // Below at every probe: the device stayed under b, so μ lies above them.
            if self.n_above == 0 && hi - median <= near {
                return Some(StopReason::OutsideBracket {
                    edge: BracketEdge::High,
                });
            }
            if self.n_below == 0 && median - lo <= near {
                return Some(StopReason::OutsideBracket {
                    edge: BracketEdge::Low,
                });
            }
        }
        if !one_sided && self.summary.sd <= self.config.target_u_a {
            // Narrow, but leaning on an edge: the bracket, not the answers, bounds it there.
            if self.quantile(0.975) >= hi - near {
                Some(StopReason::OutsideBracket {
                    edge: BracketEdge::High,
                })
            } else if self.quantile(0.025) <= lo + near {
                Some(StopReason::OutsideBracket {
                    edge: BracketEdge::Low,
                })
            } else {
                Some(StopReason::UncertaintyReached)
            }
        } else if self.probes >= self.config.max_probes {
            Some(StopReason::ProbeLimit)
        } else {
            None
        }
    }

    /// The posterior of μ summarised. A search that has not seen both answers, or that
    /// stopped outside the bracket, bounds μ on one side only: its u(μ) is infinite
    /// and its interval open on the other side (see [`TransitionEstimate`]).
    pub fn estimate(&self) -> TransitionEstimate {
        let s = &self.summary;
        let (u, interval) = if let Some(StopReason::OutsideBracket { edge }) = self.stop {
            match edge {
                BracketEdge::High => (f64::INFINITY, (self.quantile(0.025), f64::INFINITY)),
                BracketEdge::Low => (f64::INFINITY, (0.0, self.quantile(0.975))),
            }
        } else if self.n_above == 0 || self.n_below == 0 {
            // Below at every probe bounds μ from below, above at every probe from above.
            let low = if self.n_below > 0 {
                self.quantile(0.025)
            } else {
                0.0
            };
            let high = if self.n_above > 0 {
                self.quantile(0.975)
            } else {
                f64::INFINITY
            };
            (f64::INFINITY, (low, high))
        } else {
            (s.sd, (self.quantile(0.025), self.quantile(0.975)))
        };
        TransitionEstimate {
            mu_a: s.mean,
            u_mu_a: u,
            probes: self.probes,
            stop_reason: self.stop,
            sigma_a: s.sigma_mean,
            interval_95: interval,
        }
    }

    /// Renormalise the log grid to its best cell, drop the cells that can no longer
    /// matter (from the ends of each column's interval), and take the marginal and
    /// per-column moments of what is left.
    fn summarise(&mut self) {
        let n = self.n;
        let mut max = f64::NEG_INFINITY;
        for (j, &(a, b)) in self.alive.iter().enumerate() {
            for &v in &self.log_post[j * n + a..j * n + b] {
                max = max.max(v);
            }
        }
        let mut marginal = vec![0.0; n];
        let mut columns = Vec::with_capacity(self.sigmas.len());
        let mut total = 0.0;
        let mut sigma_sum = 0.0;
        for (j, &sigma) in self.sigmas.iter().enumerate() {
            let (mut a, mut b) = self.alive[j];
            let column = &mut self.log_post[j * n..(j + 1) * n];
            while a < b && column[a] - max < -PRUNE_NATS {
                a += 1;
            }
            while b > a && column[b - 1] - max < -PRUNE_NATS {
                b -= 1;
            }
            self.alive[j] = (a, b);
            let (mut c0, mut c1, mut c2) = (0.0, 0.0, 0.0);
            // Moments about the bracket's low end keep the variance free of cancellation.
            let mut d = (a as f64 + 0.5) * self.step;
            for (cell, m) in column[a..b].iter_mut().zip(&mut marginal[a..b]) {
                // Keep the logs near 0 whatever the number of probes.
                *cell -= max;
                let w = cell.exp();
                *m += w;
                c0 += w;
                c1 += w * d;
                c2 += w * d * d;
                d += self.step;
            }
            let (mean, var) = if c0 > 0.0 {
                let m = c1 / c0;
                (self.lo + m, (c2 / c0 - m * m).max(0.0))
            } else {
                (self.lo, 0.0)
            };
            columns.push((c0, mean, var));
            total += c0;
            sigma_sum += c0 * sigma;
        }
        for column in &mut columns {
            column.0 /= total;
        }
        let (mut m1, mut m2) = (0.0, 0.0);
        let mut cdf = Vec::with_capacity(n);
        let mut cumulative = 0.0;
        for (i, &w) in marginal.iter().enumerate() {
            let d = (i as f64 + 0.5) * self.step;
            m1 += w * d;
            m2 += w * d * d;
            cumulative += w;
            cdf.push(cumulative / total);
        }
        let m = m1 / total;
        // A cell's mass is spread over its width: add the width's own variance.
        let var = (m2 / total - m * m).max(0.0) + self.step * self.step / 12.0;
        self.summary = Summary {
            mean: self.lo + m,
            sd: var.sqrt(),
            sigma_mean: sigma_sum / total,
            cdf,
            columns,
        };
    }

    /// The q-quantile of the posterior of μ, each cell's mass spread evenly over it.
    fn quantile(&self, q: f64) -> f64 {
        let cdf = &self.summary.cdf;
        let i = cdf.partition_point(|&c| c < q).min(self.n - 1);
        let before = if i == 0 { 0.0 } else { cdf[i - 1] };
        let mass = cdf[i] - before;
        let within = if mass > 0.0 {
            ((q - before) / mass).clamp(0.0, 1.0)
        } else {
            0.5
        };
        self.lo + (i as f64 + within) * self.step
    }

    /// The candidate probe whose answer is expected to leave the least entropy in the
    /// joint posterior of (μ, σ′) (see the type's documentation).
    fn most_informative_probe(&self) -> f64 {
        let table = ln_phi_table();
        let cell_var = self.step * self.step / 12.0;
        let columns: Vec<(f64, f64, f64, f64)> = self
            .summary
            .columns
            .iter()
            .zip(&self.sigmas)
            .filter(|((w, _, _), _)| *w > 0.0)
            .map(|(&(w, m, v), &sigma)| (w, m, v + cell_var, sigma))
            .collect();
        let mut best = (f64::INFINITY, self.quantile(0.5));
        let mut posterior = Vec::with_capacity(columns.len());
        for q in CANDIDATE_QUANTILES {
            let x = self.quantile(q);
            let mut expected = 0.0;
            for above in [true, false] {
                posterior.clear();
                let mut p_outcome = 0.0;
                for &(w, m, v, sigma) in &columns {
                    let tau2 = sigma * sigma + v;
                    let tau = tau2.sqrt();
                    let z = if above { (x - m) / tau } else { (m - x) / tau };
                    let ln_p = table.ln_cdf(z);
                    // Inverse Mills ratio φ(z)/Φ(z), formed in logs so it holds far out.
                    let mills = (-0.5 * z * z - ln_p).exp() / (2.0 * std::f64::consts::PI).sqrt();
                    let shrink = v / tau2 * mills * (z + mills);
                    let v_after = v * (1.0 - shrink).max(f64::EPSILON);
                    let p = w * ln_p.exp();
                    p_outcome += p;
                    posterior.push((p, v_after));
                }
                if p_outcome <= 0.0 {
                    continue;
                }
                let mut entropy = 0.0;
                for &(p, v_after) in &posterior {
                    let w_after = p / p_outcome;
                    if w_after > 0.0 {
                        entropy += w_after * (0.5 * v_after.ln() - w_after.ln());
                    }
                }
                expected += p_outcome * entropy;
            }
            if expected < best.0 {
                best = (expected, x);
            }
        }
        best.1
    }
}

/// ln Φ(t), tabulated once from statrs' erfc and interpolated linearly: the search
/// evaluates it for every live cell at every probe, and the table makes that a lookup.
/// On the table's span (ln Φ)″ lies in (−1, 0), so the interpolation is within
/// step²/8 ≈ 8·10⁻⁶ of ln Φ; below it the asymptotic series (relative error < 10⁻⁵)
/// takes over, above it ln Φ rounds to 0.
struct LnPhiTable {
    values: Vec<f64>,
}

impl LnPhiTable {
    const LOW: f64 = -12.0;
    /// Above this, 1 − Φ(t) ≈ 5·10⁻¹⁷: ln Φ(t) is 0 in double precision.
    const HIGH: f64 = 8.3;
    const PER_UNIT: f64 = 128.0;

    fn build() -> Self {
        let n = ((Self::HIGH - Self::LOW) * Self::PER_UNIT).ceil() as usize + 2;
        let values = (0..n)
            .map(|k| ln_phi_exact(Self::LOW + k as f64 / Self::PER_UNIT))
            .collect();
        LnPhiTable { values }
    }

    #[inline]
    fn ln_cdf(&self, t: f64) -> f64 {
        if t >= Self::HIGH {
            0.0
        } else if t < Self::LOW {
            ln_phi_asymptotic(t)
        } else {
            let u = (t - Self::LOW) * Self::PER_UNIT;
            let k = u as usize;
            let f = u - k as f64;
            self.values[k] + f * (self.values[k + 1] - self.values[k])
        }
    }
}

fn ln_phi_table() -> &'static LnPhiTable {
    static TABLE: OnceLock<LnPhiTable> = OnceLock::new();
    TABLE.get_or_init(LnPhiTable::build)
}

/// ln Φ(t) from erfc, written so that neither tail loses its digits.
fn ln_phi_exact(t: f64) -> f64 {
    let sqrt2 = std::f64::consts::SQRT_2;
    if t > 0.0 {
        (-0.5 * erfc(t / sqrt2)).ln_1p()
    } else {
        (0.5 * erfc(-t / sqrt2)).ln()
    }
}

/// ln Φ(t) for t ≤ −12: ln φ(t) − ln(−t) + ln(1 − t⁻² + 3t⁻⁴), the last logarithm by
/// its series (its argument is within 0.7 % of 1).
fn ln_phi_asymptotic(t: f64) -> f64 {
    const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;
    let u = 1.0 / (t * t);
    let series = u * (-1.0 + 3.0 * u);
    -0.5 * t * t - (-t).ln() - LN_SQRT_2PI + series - 0.5 * series * series
}

/// Error at a transition point, % of the reference: the device reads `boundary_a`
/// where the reference is `mu_a`, e = (b − μ) / μ × 100.
pub fn transition_error_percent(boundary_a: f64, mu_a: f64) -> f64 {
    (boundary_a - mu_a) / mu_a * 100.0
}

/// How many σ′ of the noise expected a bracket reaches beyond where it would otherwise
/// end: the search reports a transition within about σ′ of an edge as outside the
/// bracket (see [`StopReason::OutsideBracket`]).
pub const BRACKET_MARGIN_SIGMAS: f64 = 3.0;

/// How many times the acceptance limit a bracket covers on either side. A search also
/// reports a transition as outside when its posterior, narrowed to the target, still
/// reaches within about the target of an edge: with a bracket at ±L exactly, sensors
/// well within the limit were taken for ones beyond it (simulated, 300 sensors per point
/// with gains of 3 … 5 %, σ = 20 mA, target 0.4 % of b, brackets ±L + 3σ: from 16 %
/// of them at 15.5 A to 53 % at 62.5 A). At ±2L none were, from 1.5 A to 80 A and
/// gains up to 6 %, for two or three probes more; and every search that stopped at an
/// edge bounded the error beyond the limit.
pub const BRACKET_LIMIT_FACTOR: f64 = 2.0;

/// The reference currents (low, high) a search for the transition at `boundary_a` covers
/// to decide a device against ±`limit_percent`: where a device whose error is
/// ±[`BRACKET_LIMIT_FACTOR`]·L flips, b / (1 + 2L) … b / (1 − 2L), each widened by
/// [`BRACKET_MARGIN_SIGMAS`] times `noise_a`, the noise expected of one reading. Within
/// it a device near its limit, on either side, is located and decided by its error and
/// U; beyond it the error is far beyond the limit. None when there is no such bracket
/// (a limit of 50 % or more, or a low end at or below 0 A).
pub fn limit_bracket_a(boundary_a: f64, limit_percent: f64, noise_a: f64) -> Option<(f64, f64)> {
    let l = BRACKET_LIMIT_FACTOR * limit_percent / 100.0;
    let margin = BRACKET_MARGIN_SIGMAS * noise_a;
    let lo = boundary_a / (1.0 + l) - margin;
    let hi = boundary_a / (1.0 - l) + margin;
    (l > 0.0 && l < 1.0 && lo > 0.0 && hi.is_finite() && hi > lo).then_some((lo, hi))
}

/// The budget of the error at a transition point.
///
/// - reference: the reference current's certificate U (k = 2) / 2, % of reading;
/// - transition location: the search's u(μ) through ∂e/∂μ = −100 · b / μ², so
///   u = 100 · b / μ² · u(μ) %;
/// - setpoint resolution: when the source's output is known only to its setpoint step,
///   step / √12 (rectangular) relative to μ; 0 when not given.
///
/// The reference and resolution terms are relative uncertainties of the reference
/// current taken one-for-one into the error; their exact sensitivity b/μ differs from 1
/// by the error itself, a second-order effect. All terms are taken with infinite degrees
/// of freedom (certificate, rectangular bound, and a posterior standard deviation whose
/// noise width is marginalised, not estimated from a few repeats); they combine through
/// [`UncertaintyBudget::combine`] like every other budget of the bench, so ν_eff and k
/// follow the one rule (here: ν_eff infinite, k = 2).
pub fn transition_budget(
    boundary_a: f64,
    mu_a: f64,
    u_mu_a: f64,
    reference_u_k2_percent: f64,
    setpoint_step_a: Option<f64>,
) -> UncertaintyBudget {
    let reference = Contribution::new(
        "reference",
        reference_u_k2_percent / 2.0,
        None,
        "reference current, certificate U (k=2) / 2, normal",
    );
    let location = Contribution::new(
        "transition location",
        100.0 * boundary_a / (mu_a * mu_a) * u_mu_a,
        None,
        format!(
            "posterior standard deviation of the transition current, {u_mu_a:.3e} A, × 100·b/μ²"
        ),
    );
    let resolution = Contribution::new(
        "setpoint resolution",
        setpoint_step_a
            .map(|step| 100.0 * step / 12f64.sqrt() / mu_a)
            .unwrap_or(0.0),
        None,
        match setpoint_step_a {
            Some(step) => format!("source setpoint step {step} A, rectangular: step / √12"),
            None => "not given: the set currents are known exactly".into(),
        },
    );
    UncertaintyBudget::combine(
        vec![reference, location, resolution],
        "root sum of squares of reference, transition location and setpoint resolution",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xorshift64* with Box–Muller: a seeded, dependency-free generator for the
    /// simulated devices (the library itself draws nothing).
    struct Rng(u64);

    impl Rng {
        fn next_u64(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            x.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        /// Uniform on (0, 1).
        fn uniform(&mut self) -> f64 {
            ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        }

        fn normal(&mut self) -> f64 {
            let (u1, u2) = (self.uniform(), self.uniform());
            (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
        }
    }

    /// A simulated sensor: internal value x·(1 + gain) + N(0, noise²), compared with b.
    struct Device {
        gain: f64,
        noise_a: f64,
    }

    impl Device {
        fn above(&self, x: f64, boundary: f64, rng: &mut Rng) -> bool {
            x * (1.0 + self.gain) + self.noise_a * rng.normal() >= boundary
        }

        fn mu_true(&self, boundary: f64) -> f64 {
            boundary / (1.0 + self.gain)
        }
    }

    fn run(config: TransitionSearchConfig, device: &Device, rng: &mut Rng) -> TransitionEstimate {
        let mut search = TransitionSearch::new(config).unwrap();
        while let Some(x) = search.next_probe() {
            let above = device.above(x, config.boundary_a, rng);
            search.observe(x, above);
        }
        search.estimate()
    }

    fn config(
        bracket_a: (f64, f64),
        target_u_a: f64,
        grid_points: usize,
    ) -> TransitionSearchConfig {
        TransitionSearchConfig {
            boundary_a: 4.5,
            bracket_a,
            target_u_a,
            max_probes: 200,
            grid_points,
            sigma_range_a: None,
        }
    }

    #[test]
    fn error_hand_cases() {
        // Rounding boundary 4.5 reached at 4.4 A: (4.5 − 4.4)/4.4 = +2.2727 %, reads high.
        assert!((transition_error_percent(4.5, 4.4) - 2.272_727_272_7).abs() < 1e-9);
        // ... at 4.6 A: −0.1/4.6 = −2.1739 %, reads low.
        assert!((transition_error_percent(4.5, 4.6) + 2.173_913_043_5).abs() < 1e-9);
        assert_eq!(transition_error_percent(4.5, 4.5), 0.0);
        // Truncating sensor (boundary n + 1 = 5) flipping at 4.9 A: 0.1/4.9 = 2.0408 %.
        assert!((transition_error_percent(5.0, 4.9) - 2.040_816_326_5).abs() < 1e-9);
    }

    #[test]
    fn budget_hand_case() {
        // b = 4.5 A, μ = 4.4 A, u(μ) = 0.01 A, reference U = 0.02 % (k=2), source step 1 mA.
        let b = transition_budget(4.5, 4.4, 0.01, 0.02, Some(0.001));
        let u: Vec<f64> = b.contributions.iter().map(|c| c.u_percent).collect();
        // reference 0.02 / 2 = 0.01 %
        assert!((u[0] - 0.01).abs() < 1e-12);
        // location 100 · 4.5 / 4.4² · 0.01 = 100 · 4.5 / 19.36 · 0.01 = 0.232438017 %
        assert!((u[1] - 0.232_438_017).abs() < 1e-9, "{}", u[1]);
        // resolution 100 · 0.001 / √12 / 4.4 = 0.028867513 / 4.4 = 0.006560799 %
        assert!((u[2] - 0.006_560_799).abs() < 1e-9, "{}", u[2]);
        // u_c = √(0.01² + 0.232438² + 0.0065608²) = 0.232745517 %, U = 2 u_c = 0.465491034 %
        assert!((b.combined_u_percent - 0.232_745_517).abs() < 1e-9);
        assert_eq!(b.coverage_factor, 2.0);
        assert!((b.expanded_u_percent - 0.465_491_034).abs() < 1e-9);
        assert!(b.effective_dof.is_none());
        // erf(2/√2) = 0.9544997361036, statrs' erf to ~2e-12.
        assert!((b.coverage_probability - crate::uncertainty::COVERAGE_PROBABILITY).abs() < 1e-11);
    }

    #[test]
    fn budget_without_step_takes_k_from_combine() {
        // No step: the resolution term is listed at 0. u_c = √(0.01² + 0.232438²) = 0.232653028 %.
        let b = transition_budget(4.5, 4.4, 0.01, 0.02, None);
        assert_eq!(b.contributions[2].u_percent, 0.0);
        assert!((b.combined_u_percent - 0.232_653_028).abs() < 1e-9);
        // Every term infinite in ν: k as `combine` gives it for ν_eff = ∞, U = 2 u_c.
        assert_eq!(
            (b.effective_dof, b.coverage_factor),
            (None, crate::uncertainty::coverage_factor(None))
        );
        assert!((b.expanded_u_percent - 2.0 * 0.232_653_028).abs() < 1e-8);
    }

    #[test]
    fn bracket_from_the_limit() {
        // b = 4.5 A, ±5 %: twice the limit, 4.5/1.1 = 4.090909091, 4.5/0.9 = 5; ± 3 · 0.05 A.
        let (lo, hi) = limit_bracket_a(4.5, 5.0, 0.05).unwrap();
        assert!((lo - 3.940_909_091).abs() < 1e-9, "{lo}");
        assert!((hi - 5.15).abs() < 1e-9, "{hi}");
        // A device exactly at ±10 % flips at the unwidened ends.
        assert!((transition_error_percent(4.5, lo + 0.15) - 10.0).abs() < 1e-9);
        assert!((transition_error_percent(4.5, hi - 0.15) + 10.0).abs() < 1e-9);
        // No bracket for a limit of 50 % or more, or one reaching 0 A.
        assert_eq!(limit_bracket_a(4.5, 50.0, 0.05), None);
        assert_eq!(limit_bracket_a(0.5, 5.0, 0.2), None);
        assert!(limit_bracket_a(0.5, 5.0, 0.1).is_some());
    }

    #[test]
    fn ln_phi_table_matches_erfc() {
        let table = ln_phi_table();
        for k in 0..=4000 {
            let t = -30.0 + k as f64 * 0.0097;
            let exact = ln_phi_exact(t);
            let got = table.ln_cdf(t);
            // 1e-5 in ln Φ is a relative 1e-5 in Φ, anywhere in either tail.
            assert!(
                (got - exact).abs() <= 1e-5 * exact.abs().max(1.0),
                "t {t}: {got} vs {exact}"
            );
        }
        assert_eq!(table.ln_cdf(9.0), 0.0);
        // Far beyond where erfc underflows the asymptote still ranks the cells.
        assert!(table.ln_cdf(-60.0) < table.ln_cdf(-50.0));
        // ln Φ(−60) = −1800 − ln 60 − ln √(2π) − 1/3600 + … = −1805.013561
        assert!(
            (table.ln_cdf(-60.0) + 1_805.013_561).abs() < 1e-5,
            "{}",
            table.ln_cdf(-60.0)
        );
    }

    #[test]
    fn invalid_configurations_are_refused() {
        let good = config((4.0, 5.0), 0.01, 100);
        assert!(TransitionSearch::new(good).is_ok());
        let refused = |c: TransitionSearchConfig| TransitionSearch::new(c).unwrap_err();
        assert_eq!(
            refused(TransitionSearchConfig {
                boundary_a: 0.0,
                ..good
            }),
            TransitionConfigError::Boundary(0.0)
        );
        assert_eq!(
            refused(TransitionSearchConfig {
                bracket_a: (5.0, 4.0),
                ..good
            }),
            TransitionConfigError::Bracket(5.0, 4.0)
        );
        assert_eq!(
            refused(TransitionSearchConfig {
                bracket_a: (0.0, 4.0),
                ..good
            }),
            TransitionConfigError::Bracket(0.0, 4.0)
        );
        assert!(matches!(
            refused(TransitionSearchConfig { target_u_a: f64::NAN, ..good }),
            TransitionConfigError::TargetUncertainty(t) if t.is_nan()
        ));
        assert_eq!(
            refused(TransitionSearchConfig {
                max_probes: 0,
                ..good
            }),
            TransitionConfigError::NoProbes
        );
        assert_eq!(
            refused(TransitionSearchConfig {
                grid_points: 8,
                ..good
            }),
            TransitionConfigError::GridPoints(8)
        );
        assert_eq!(
            refused(TransitionSearchConfig {
                sigma_range_a: Some((0.02, 0.01)),
                ..good
            }),
            TransitionConfigError::SigmaRange(0.02, 0.01)
        );
    }

    #[test]
    fn default_sigma_grid_spans_a_cell_to_a_quarter_bracket() {
        // W = 1 A, 100 cells: σ′ from 0.01 to 0.25 A, ratio 25 → ⌈ln 25 / ln √2⌉ + 1 = 11 points.
        let s = TransitionSearch::new(config((4.0, 5.0), 0.01, 100)).unwrap();
        let g = s.sigma_grid_a();
        assert_eq!(g.len(), 11);
        assert!((g[0] - 0.01).abs() < 1e-12 && (g[10] - 0.25).abs() < 1e-12);
        // A single σ′ when the caller knows it.
        let mut c = config((4.0, 5.0), 0.01, 100);
        c.sigma_range_a = Some((0.02, 0.02));
        assert_eq!(TransitionSearch::new(c).unwrap().sigma_grid_a(), &[0.02]);
    }

    /// A noise-free device: the answers are a step, and the search is a bisection plus the
    /// off-centre probes that rule out a wide probit curve. log2(W/h) = log2(2000) = 11
    /// halvings bring a pure bisection to one grid step; the estimate gets there within
    /// 5–15 probes, and the search stops after 16–19, when the posterior standard
    /// deviation (which still allows a σ′ of a few mA) is below the 5 mA target.
    #[test]
    fn noise_free_device_is_bisected() {
        let c = config((4.05, 4.95), 0.005, 2000);
        let step = 0.9 / 2000.0;
        let mut rng = Rng(1);
        let (mut most, mut latest_within, mut worst) = (0, 0, 0.0f64);
        for k in 0..25 {
            let mu = 4.07 + 0.86 * (k as f64 + 0.37) / 25.0;
            let device = Device {
                gain: 4.5 / mu - 1.0,
                noise_a: 0.0,
            };
            let mut search = TransitionSearch::new(c).unwrap();
            let mut within_step_at = None;
            while let Some(x) = search.next_probe() {
                search.observe(x, device.above(x, 4.5, &mut rng));
                if within_step_at.is_none() && (search.estimate().mu_a - mu).abs() <= step {
                    within_step_at = Some(search.probes());
                }
            }
            let e = search.estimate();
            assert_eq!(
                e.stop_reason,
                Some(StopReason::UncertaintyReached),
                "μ {mu}"
            );
            // The answers allow a few-mA σ′ still, so u(μ) is honest, not tight.
            assert!(
                e.u_mu_a <= 0.005 && (e.mu_a - mu).abs() <= e.u_mu_a,
                "{e:?}"
            );
            assert!(e.interval_95.0 <= mu && mu <= e.interval_95.1);
            most = most.max(e.probes);
            latest_within = latest_within.max(within_step_at.unwrap());
            worst = worst.max((e.mu_a - mu).abs() / step);
        }
        eprintln!(
            "noise-free: stopped by {most} probes, within a grid step by {latest_within}, \
             final error ≤ {worst:.2} steps"
        );
        // Measured: within a step by 15 probes, stopped by 19, final error ≤ 1.46 steps.
        assert!(latest_within <= 16, "{latest_within} probes to a grid step");
        assert!(most <= 21, "{most} probes");
        assert!(worst <= 2.0, "{worst} steps");
    }

    /// Seeded simulated sensors around the 4/5 A boundary: gain errors uniform in ±5 %,
    /// noise σ ∈ {5, 20, 50} mA, bracket from a 5 % limit widened to 8 % (3 % of 4.5 A is
    /// 2.7 σ′ of the noisiest), target u(μ) = 10 mA. The posterior standard deviation must
    /// be an honest uncertainty: |μ̂ − μ| ≤ 2 u(μ) in 92–99 % of the searches.
    #[test]
    fn simulated_sensors_are_located_with_honest_uncertainty() {
        let b = 4.5;
        let c = config((b / 1.08, b / 0.92), 0.01, 500);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let (mut covered, mut searches) = (0, 0);
        // Median probes measured: 14, 19 and 55.
        for (noise, median_bound) in [(0.005, 20), (0.02, 28), (0.05, 75)] {
            let (mut probes, mut group_covered) = (Vec::new(), 0);
            for _ in 0..170 {
                let device = Device {
                    gain: 0.1 * rng.uniform() - 0.05,
                    noise_a: noise,
                };
                let e = run(c, &device, &mut rng);
                let mu = device.mu_true(b);
                assert_eq!(e.stop_reason, Some(StopReason::UncertaintyReached), "{e:?}");
                searches += 1;
                if (e.mu_a - mu).abs() <= 2.0 * e.u_mu_a {
                    group_covered += 1;
                }
                probes.push(e.probes);
                if noise <= 0.02 {
                    // 0.02 % reference; U(k=2) of the error at 4.5 A within 1 %.
                    let budget = transition_budget(b, e.mu_a, e.u_mu_a, 0.02, None);
                    assert!(budget.expanded_u_percent <= 1.0, "{budget:?}");
                }
            }
            probes.sort_unstable();
            let median = probes[probes.len() / 2];
            eprintln!(
                "σ = {noise} A: probes median {median}, 90th percentile {}, max {}; \
                 coverage {:.3}",
                probes[probes.len() * 9 / 10],
                probes[probes.len() - 1],
                group_covered as f64 / probes.len() as f64
            );
            covered += group_covered;
            assert!(
                median <= median_bound,
                "σ = {noise}: median {median} probes"
            );
        }
        let coverage = covered as f64 / searches as f64;
        eprintln!("coverage of ±2u(μ): {coverage:.3} over {searches} searches");
        assert!((0.92..=0.99).contains(&coverage), "coverage {coverage}");
    }

    /// Transitions beyond either edge, far or just beyond (half a σ′): the search says
    /// so, and never reports a finite uncertainty. Far beyond, every answer is the same
    /// and the posterior piles at the edge within a few probes; just beyond, a noisy
    /// device answers both ways near the edge and the posterior leans on it.
    #[test]
    fn transition_outside_the_bracket_is_reported() {
        let b = 4.5;
        let c = config((b / 1.08, b / 0.92), 0.01, 500);
        let (lo, hi) = c.bracket_a;
        let mut rng = Rng(7);
        let (mut most_far, mut most_near, mut widest) = (0, 0, 0.0f64);
        for noise in [0.0, 0.005, 0.02, 0.05] {
            for (beyond, far) in [(0.2, true), (0.5 * noise + 0.001, false)] {
                for (mu, edge) in [
                    (lo - beyond, BracketEdge::Low),
                    (hi + beyond, BracketEdge::High),
                ] {
                    let device = Device {
                        gain: b / mu - 1.0,
                        noise_a: noise,
                    };
                    for _ in 0..10 {
                        let e = run(c, &device, &mut rng);
                        assert_eq!(
                            e.stop_reason,
                            Some(StopReason::OutsideBracket { edge }),
                            "μ {mu}, σ {noise}: {e:?}"
                        );
                        assert_eq!(e.u_mu_a, f64::INFINITY);
                        // How far inside the edge the one-sided interval reaches.
                        let reach = match edge {
                            BracketEdge::Low => {
                                assert_eq!(e.interval_95.0, 0.0);
                                e.interval_95.1 - lo
                            }
                            BracketEdge::High => {
                                assert_eq!(e.interval_95.1, f64::INFINITY);
                                hi - e.interval_95.0
                            }
                        };
                        widest = widest.max(reach);
                        if far {
                            most_far = most_far.max(e.probes);
                        } else {
                            most_near = most_near.max(e.probes);
                        }
                    }
                }
            }
        }
        eprintln!(
            "outside: far by {most_far} probes, just beyond by {most_near}; \
             the bound reaches {widest:.4} A inside"
        );
        // Measured: 6 probes, 27 probes, 53 mA.
        assert!(most_far <= 8, "{most_far} probes");
        assert!(most_near <= 40, "{most_near} probes");
        assert!(widest <= 0.08, "{widest} A");
    }

    #[test]
    fn one_sided_answers_bound_but_do_not_locate() {
        let c = config((4.0, 5.0), 0.01, 500);
        let mut s = TransitionSearch::new(c).unwrap();
        let e = s.estimate();
        assert_eq!(
            (e.probes, e.u_mu_a, e.interval_95),
            (0, f64::INFINITY, (0.0, f64::INFINITY))
        );
        assert!(
            (e.mu_a - 4.5).abs() < 1e-9,
            "the prior's centre: {}",
            e.mu_a
        );
        // Two "below" answers: μ is above them, with no upper bound yet.
        s.observe(4.5, false);
        s.observe(4.75, false);
        let e = s.estimate();
        assert_eq!(e.stop_reason, None);
        assert_eq!(e.u_mu_a, f64::INFINITY);
        assert!(
            e.interval_95.0 > 4.6 && e.interval_95.1 == f64::INFINITY,
            "{e:?}"
        );
        // The first "above" brackets it: now a finite posterior between the two.
        s.observe(4.9, true);
        let e = s.estimate();
        assert!(e.u_mu_a.is_finite() && e.u_mu_a < 0.1);
        assert!(4.74 < e.mu_a && e.mu_a < 4.91, "{e:?}");
    }

    /// A source that sets currents in 10 mA steps: the caller sets the nearest step and
    /// reports what it set. Noise-free answers at settable currents confine μ to the
    /// 10 mA between two of them, wherever the probes were asked for; the budget's
    /// setpoint-resolution term (10 mA/√12 = 2.9 mA) is what covers the position inside.
    #[test]
    fn rounded_setpoints_are_used_as_set() {
        let mut c = config((4.05, 4.95), 0.002, 2000);
        c.max_probes = 40;
        let mut rng = Rng(3);
        for mu in [4.3337, 4.6061, 4.7291] {
            let device = Device {
                gain: 4.5 / mu - 1.0,
                noise_a: 0.0,
            };
            let mut search = TransitionSearch::new(c).unwrap();
            while let Some(x) = search.next_probe() {
                let set = (x * 100.0).round() / 100.0;
                search.observe(set, device.above(set, 4.5, &mut rng));
            }
            let e = search.estimate();
            let cell = ((mu * 100.0).floor() / 100.0, (mu * 100.0).ceil() / 100.0);
            assert!(cell.0 < e.mu_a && e.mu_a < cell.1, "{e:?}");
            let budget = transition_budget(4.5, e.mu_a, e.u_mu_a, 0.02, Some(0.01));
            let error = transition_error_percent(4.5, e.mu_a);
            let truth = transition_error_percent(4.5, mu);
            assert!(
                (error - truth).abs() <= budget.expanded_u_percent,
                "{budget:?}"
            );
        }
    }

    #[test]
    fn same_answers_give_same_probes() {
        let c = config((4.05, 4.95), 0.005, 1000);
        let answers = [
            false, true, true, false, true, false, false, true, true, false,
        ];
        let walk = || {
            let mut s = TransitionSearch::new(c).unwrap();
            let mut xs = Vec::new();
            for &a in &answers {
                let x = s.next_probe().unwrap();
                xs.push(x);
                s.observe(x, a);
            }
            (xs, s.estimate())
        };
        assert_eq!(walk(), walk());
    }
}
