//! Prediction beyond the rules. BG/NBD (Fader, Hardie & Lee 2005, "Counting
//! your customers the easy way") gives each customer the probability of
//! still being active and the orders to expect; Gamma-Gamma (Fader, Hardie
//! & Lee 2005, "RFM and CLV") the value of those orders; together, the
//! customer's lifetime value.
//!
//! Both are fitted by maximum likelihood with analytic gradients (BFGS over
//! the logarithms of the parameters, so they stay positive). Customers with
//! the same summary are counted once with a weight, and everything that
//! depends only on the purchase count is computed once per count, so a fit
//! over a million customers costs little more than one over thousands.
//!
//! Time is in weeks. Spend is in fen as a statistic (f64); values that
//! leave this module as money are rounded to integer fen.

pub mod math;
pub mod simulate;

use crate::error::Lang;
use chrono::NaiveDate;
use math::{digamma, hyp2f1, ln_gamma, minimize};
use serde::Serialize;
use std::collections::BTreeMap;

/// One customer's purchase history as the models see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Repeat purchases: purchase days after the first.
    pub frequency: f64,
    /// Weeks from the first to the last purchase day.
    pub recency: f64,
    /// Weeks from the first purchase day to the end of observation.
    pub t: f64,
}

impl Summary {
    /// A summary as read from outside: checks the relations the models need.
    pub fn new(frequency: f64, recency: f64, t: f64) -> Result<Summary, SummaryProblem> {
        if !(frequency.is_finite() && frequency >= 0.0 && frequency.fract() == 0.0) {
            return Err(SummaryProblem::Frequency);
        }
        if !(recency.is_finite() && recency >= 0.0) {
            return Err(SummaryProblem::Recency);
        }
        if !(t.is_finite() && t > 0.0 && t >= recency) {
            return Err(SummaryProblem::T);
        }
        if frequency == 0.0 && recency != 0.0 {
            return Err(SummaryProblem::RecencyWithoutRepeat);
        }
        Ok(Summary {
            frequency,
            recency,
            t,
        })
    }
}

/// Why a summary row cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryProblem {
    Frequency,
    Recency,
    T,
    RecencyWithoutRepeat,
    Monetary,
}

impl SummaryProblem {
    pub fn field(self) -> &'static str {
        match self {
            SummaryProblem::Frequency => "frequency",
            SummaryProblem::Recency | SummaryProblem::RecencyWithoutRepeat => "recency",
            SummaryProblem::T => "T",
            SummaryProblem::Monetary => "monetary_value",
        }
    }

    pub fn message(self, lang: Lang) -> &'static str {
        match (self, lang) {
            (SummaryProblem::Frequency, Lang::Zh) => "必须是不小于 0 的整数（重复购买次数）",
            (SummaryProblem::Frequency, Lang::En) => {
                "must be a whole number ≥ 0 (repeat purchases)"
            }
            (SummaryProblem::Recency, Lang::Zh) => "必须是不小于 0 的数",
            (SummaryProblem::Recency, Lang::En) => "must be a number ≥ 0",
            (SummaryProblem::T, Lang::Zh) => "必须大于 0 且不小于 recency",
            (SummaryProblem::T, Lang::En) => "must be > 0 and ≥ recency",
            (SummaryProblem::RecencyWithoutRepeat, Lang::Zh) => {
                "没有重复购买（frequency = 0）时必须为 0"
            }
            (SummaryProblem::RecencyWithoutRepeat, Lang::En) => {
                "must be 0 when there are no repeat purchases (frequency = 0)"
            }
            (SummaryProblem::Monetary, Lang::Zh) => "必须是不小于 0 的数",
            (SummaryProblem::Monetary, Lang::En) => "must be a number ≥ 0",
        }
    }
}

/// A customer's orders summarized as of a date: orders on one day count as
/// one purchase; spend is the mean of the repeat purchase days (fen).
pub fn summarize(orders: &[(NaiveDate, i64)], as_of: NaiveDate) -> Option<(Summary, f64)> {
    let mut days: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    for &(on, fen) in orders.iter().filter(|(on, _)| *on <= as_of) {
        *days.entry(on).or_default() += fen;
    }
    let (&first, _) = days.first_key_value()?;
    let (&last, _) = days.last_key_value()?;
    let weeks = |from: NaiveDate, to: NaiveDate| (to - from).num_days() as f64 / 7.0;
    let repeat: Vec<i64> = days.values().skip(1).copied().collect();
    let spend = if repeat.is_empty() {
        0.0
    } else {
        repeat.iter().map(|&f| f as f64).sum::<f64>() / repeat.len() as f64
    };
    // A customer whose first order is today has T = 0; give the model a day.
    let t = weeks(first, as_of).max(1.0 / 7.0);
    Some((
        Summary {
            frequency: repeat.len() as f64,
            recency: weeks(first, last),
            t,
        },
        spend,
    ))
}

/// Why a model could not be fitted.
#[derive(Debug, Clone, PartialEq)]
pub enum FitError {
    /// Too few customers (or too few who bought again) to estimate anything.
    TooFew { needed: usize, got: usize },
    /// The optimizer did not reach a maximum.
    NotConverged { iterations: u32 },
}

impl FitError {
    pub fn message(&self, lang: Lang) -> String {
        match (self, lang) {
            (FitError::TooFew { needed, got }, Lang::Zh) => {
                format!("数据太少，无法拟合：至少需要 {needed} 位有重复购买的客户，现有 {got} 位")
            }
            (FitError::TooFew { needed, got }, Lang::En) => format!(
                "too little data to fit: needs at least {needed} customers with repeat purchases, has {got}"
            ),
            (FitError::NotConverged { iterations }, Lang::Zh) => {
                format!("拟合在 {iterations} 次迭代后仍未收敛")
            }
            (FitError::NotConverged { iterations }, Lang::En) => {
                format!("the fit did not converge after {iterations} iterations")
            }
        }
    }
}

impl std::fmt::Display for FitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} / {}", self.message(Lang::Zh), self.message(Lang::En))
    }
}

impl std::error::Error for FitError {}

/// The fewest repeat buyers a fit is attempted with.
pub const MIN_REPEAT_BUYERS: usize = 10;

/// BG/NBD parameters: purchase rates ~ Gamma(r, α), dropout ~ Beta(a, b).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

/// A fitted model and how the fit went.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fitted<P> {
    #[serde(flatten)]
    pub params: P,
    pub log_likelihood: f64,
    pub customers: usize,
    pub iterations: u32,
    /// The ridge on the log-parameters the fit needed (0: plain maximum likelihood).
    pub penalizer: f64,
}

/// Ridges tried in turn on the log-parameters (λ·Σθ² added to the mean
/// negative log-likelihood): small or one-sided data can make the plain
/// maximum lie at infinity (a, b → ∞: everyone drops out alike); a light
/// ridge keeps the estimates finite. Where the plain maximum exists it is
/// what is returned.
pub const PENALIZERS: [f64; 4] = [0.0, 1e-4, 1e-3, 1e-2];

/// Parameters beyond e^±20 are outside the model's useful range (and
/// beyond the precision of the likelihood's terms).
const LOG_PARAM_LIMIT: f64 = 20.0;

/// Minimizes `objective` plus the ridge, trying [`PENALIZERS`] in turn.
fn fit_with_ridges(
    start: &[f64],
    mut objective: impl FnMut(&[f64], &mut [f64]) -> f64,
) -> Result<(math::Minimum, f64), FitError> {
    let mut last = 0;
    for penalizer in PENALIZERS {
        let m = minimize(
            |theta, grad| {
                if theta.iter().any(|t| t.abs() > LOG_PARAM_LIMIT) {
                    return f64::NAN;
                }
                let value = objective(theta, grad);
                for (g, t) in grad.iter_mut().zip(theta) {
                    *g += 2.0 * penalizer * t;
                }
                value + penalizer * theta.iter().map(|t| t * t).sum::<f64>()
            },
            start,
        );
        if m.converged {
            return Ok((m, penalizer));
        }
        last = m.iterations;
    }
    Err(FitError::NotConverged { iterations: last })
}

/// Customers with equal summaries, counted once.
struct Weighted<K> {
    /// Per distinct purchase count: the count and its rows (values, weight).
    groups: Vec<(f64, Vec<(K, f64)>)>,
    total: f64,
}

impl<K: Copy> Weighted<K> {
    fn new(rows: impl Iterator<Item = (f64, K, [u64; 2])>) -> Weighted<K> {
        // Ordered, so the sums (and the fit) come out the same on every run.
        let mut seen: BTreeMap<(u64, [u64; 2]), (f64, K, f64)> = BTreeMap::new();
        let mut total = 0.0;
        for (x, k, key) in rows {
            seen.entry((x.to_bits(), key)).or_insert((x, k, 0.0)).2 += 1.0;
            total += 1.0;
        }
        let mut by_x: BTreeMap<u64, (f64, Vec<(K, f64)>)> = BTreeMap::new();
        for (x, k, w) in seen.into_values() {
            // Frequencies are whole numbers ≥ 0, so their bits sort like them.
            by_x.entry(x.to_bits())
                .or_insert_with(|| (x, Vec::new()))
                .1
                .push((k, w));
        }
        Weighted {
            groups: by_x.into_values().collect(),
            total,
        }
    }
}

impl BgNbd {
    /// Fits by maximum likelihood.
    pub fn fit(summaries: &[Summary]) -> Result<Fitted<BgNbd>, FitError> {
        let repeat = summaries.iter().filter(|s| s.frequency > 0.0).count();
        if repeat < MIN_REPEAT_BUYERS {
            return Err(FitError::TooFew {
                needed: MIN_REPEAT_BUYERS,
                got: repeat,
            });
        }
        let data = Weighted::new(summaries.iter().map(|s| {
            (
                s.frequency,
                (s.recency, s.t),
                [s.recency.to_bits(), s.t.to_bits()],
            )
        }));
        let mean_t = summaries.iter().map(|s| s.t).sum::<f64>() / summaries.len() as f64;
        let start = [0.0, mean_t.max(1e-3).ln(), 0.0, 0.0];
        let (m, penalizer) =
            fit_with_ridges(&start, |theta, grad| bg_nbd_objective(&data, theta, grad))?;
        let mut scratch = [0.0; 4];
        Ok(Fitted {
            params: BgNbd {
                r: m.x[0].exp(),
                alpha: m.x[1].exp(),
                a: m.x[2].exp(),
                b: m.x[3].exp(),
            },
            log_likelihood: -bg_nbd_objective(&data, &m.x, &mut scratch) * data.total,
            customers: summaries.len(),
            iterations: m.iterations,
            penalizer,
        })
    }

    /// The log-likelihood of one customer.
    pub fn log_likelihood(&self, s: &Summary) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let x = s.frequency;
        let a1 = ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln();
        let a2 = ln_gamma(a + b) + ln_gamma(b + x) - ln_gamma(b) - ln_gamma(a + b + x);
        let a3 = -(r + x) * (alpha + s.t).ln();
        if x == 0.0 {
            return a1 + a2 + a3;
        }
        let a4 = a.ln() - (b + x - 1.0).ln() - (r + x) * (alpha + s.recency).ln();
        a1 + a2 + log_add(a3, a4)
    }

    /// P(still active | history).
    pub fn p_alive(&self, s: &Summary) -> f64 {
        1.0 / (1.0 + self.dropout_odds(s))
    }

    /// The odds of having dropped out after the last purchase (0 without repeat purchases).
    fn dropout_odds(&self, s: &Summary) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let x = s.frequency;
        if x == 0.0 {
            return 0.0;
        }
        (a.ln() - (b + x - 1.0).ln() + (r + x) * ((alpha + s.t).ln() - (alpha + s.recency).ln()))
            .exp()
    }

    /// Expected purchases in the next `weeks` weeks, given the history.
    pub fn expected_purchases(&self, s: &Summary, weeks: f64) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let x = s.frequency;
        if weeks <= 0.0 {
            return 0.0;
        }
        let end = alpha + s.t + weeks;
        let hyp = hyp2f1(r + x, b + x, a + b + x - 1.0, weeks / end);
        let ratio = ((alpha + s.t) / end).powf(r + x);
        let head = (a + b + x - 1.0) / (a - 1.0) * (1.0 - ratio * hyp);
        (head / (1.0 + self.dropout_odds(s))).max(0.0)
    }
}

/// ln(eᵃ + eᵇ) without overflow.
fn log_add(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// The mean negative log-likelihood over θ = ln(r, α, a, b) and its gradient.
fn bg_nbd_objective(data: &Weighted<(f64, f64)>, theta: &[f64], grad: &mut [f64]) -> f64 {
    let (r, alpha, a, b) = (
        theta[0].exp(),
        theta[1].exp(),
        theta[2].exp(),
        theta[3].exp(),
    );
    if ![r, alpha, a, b].iter().all(|v| v.is_finite() && *v > 0.0) {
        return f64::NAN;
    }
    let (ln_alpha, psi_r, psi_ab, lg_r, lg_b, lg_ab) = (
        alpha.ln(),
        digamma(r),
        digamma(a + b),
        ln_gamma(r),
        ln_gamma(b),
        ln_gamma(a + b),
    );
    let psi_b = digamma(b);
    let (mut ll, mut dr, mut dalpha, mut da, mut db) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for (x, rows) in &data.groups {
        let x = *x;
        let rx = r + x;
        // Terms of the purchase count alone.
        let a1 = ln_gamma(rx) - lg_r + r * ln_alpha;
        let a2 = lg_ab + ln_gamma(b + x) - lg_b - ln_gamma(a + b + x);
        let d1 = digamma(rx) - psi_r + ln_alpha;
        let psi_abx = digamma(a + b + x);
        let da2 = psi_ab - psi_abx;
        let db2 = psi_ab + digamma(b + x) - psi_b - psi_abx;
        let ln_odds = if x > 0.0 {
            a.ln() - (b + x - 1.0).ln()
        } else {
            0.0
        };
        let (mut w_sum, mut tail, mut t_r, mut t_alpha, mut w4_sum) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for &((recency, t), w) in rows {
            let ln_t = (alpha + t).ln();
            let a3 = -rx * ln_t;
            let (ll_tail, w4, ln_tx) = if x > 0.0 {
                let ln_tx = (alpha + recency).ln();
                let a4 = ln_odds - rx * ln_tx;
                let l = log_add(a3, a4);
                (l, (a4 - l).exp(), ln_tx)
            } else {
                (a3, 0.0, 0.0)
            };
            w_sum += w;
            tail += w * ll_tail;
            t_r += w * ((1.0 - w4) * ln_t + w4 * ln_tx);
            t_alpha += w * ((1.0 - w4) / (alpha + t) + w4 / (alpha + recency));
            w4_sum += w * w4;
        }
        ll += w_sum * (a1 + a2) + tail;
        dr += w_sum * d1 - t_r;
        dalpha += w_sum * r / alpha - rx * t_alpha;
        da += w_sum * da2 + w4_sum / a;
        if x > 0.0 {
            db += w_sum * db2 - w4_sum / (b + x - 1.0);
        } else {
            db += w_sum * db2;
        }
    }
    let n = data.total;
    grad[0] = -dr * r / n;
    grad[1] = -dalpha * alpha / n;
    grad[2] = -da * a / n;
    grad[3] = -db * b / n;
    -ll / n
}

/// Gamma-Gamma parameters: a customer's mean order value ~ Gamma(p, ν) with ν ~ Gamma(q, v).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub v: f64,
}

impl GammaGamma {
    /// Fits on the customers with repeat purchases: (frequency, mean repeat spend > 0).
    pub fn fit(spend: &[(f64, f64)]) -> Result<Fitted<GammaGamma>, FitError> {
        let rows: Vec<(f64, f64)> = spend
            .iter()
            .copied()
            .filter(|&(x, m)| x > 0.0 && m > 0.0)
            .collect();
        if rows.len() < MIN_REPEAT_BUYERS {
            return Err(FitError::TooFew {
                needed: MIN_REPEAT_BUYERS,
                got: rows.len(),
            });
        }
        let data = Weighted::new(rows.iter().map(|&(x, m)| (x, m, [m.to_bits(), 0])));
        let mean_m = rows.iter().map(|r| r.1).sum::<f64>() / rows.len() as f64;
        let start = [0.0, 0.0, mean_m.ln()];
        let (m, penalizer) = fit_with_ridges(&start, |theta, grad| {
            gamma_gamma_objective(&data, theta, grad)
        })?;
        let mut scratch = [0.0; 3];
        Ok(Fitted {
            params: GammaGamma {
                p: m.x[0].exp(),
                q: m.x[1].exp(),
                v: m.x[2].exp(),
            },
            log_likelihood: -gamma_gamma_objective(&data, &m.x, &mut scratch) * data.total,
            customers: rows.len(),
            iterations: m.iterations,
            penalizer,
        })
    }

    /// The expected value of one future order given `frequency` repeat
    /// purchases averaging `spend`; the population mean without any.
    /// None when the model has no finite mean (q ≤ 1).
    pub fn expected_order_value(&self, frequency: f64, spend: f64) -> Option<f64> {
        let GammaGamma { p, q, v } = *self;
        (q > 1.0).then(|| p * (v + frequency * spend) / (p * frequency + q - 1.0))
    }
}

fn gamma_gamma_objective(data: &Weighted<f64>, theta: &[f64], grad: &mut [f64]) -> f64 {
    let (p, q, v) = (theta[0].exp(), theta[1].exp(), theta[2].exp());
    if ![p, q, v].iter().all(|x| x.is_finite() && *x > 0.0) {
        return f64::NAN;
    }
    let (lg_q, psi_q, ln_v) = (ln_gamma(q), digamma(q), v.ln());
    let (mut ll, mut dp, mut dq, mut dv) = (0.0, 0.0, 0.0, 0.0);
    for (x, rows) in &data.groups {
        let x = *x;
        let px = p * x;
        let head = ln_gamma(px + q) - ln_gamma(px) - lg_q + q * ln_v + px * x.ln();
        let psi_pxq = digamma(px + q);
        let dp_head = x * psi_pxq - x * digamma(px) + x * x.ln();
        let dq_head = psi_pxq - psi_q + ln_v;
        for &(m, w) in rows {
            let ln_m = m.ln();
            let total = x * m + v;
            let ln_total = total.ln();
            ll += w * (head + (px - 1.0) * ln_m - (px + q) * ln_total);
            dp += w * (dp_head + x * ln_m - x * ln_total);
            dq += w * (dq_head - ln_total);
            dv += w * (q / v - (px + q) / total);
        }
    }
    let n = data.total;
    grad[0] = -dp * p / n;
    grad[1] = -dq * q / n;
    grad[2] = -dv * v / n;
    -ll / n
}

/// How far ahead customer value looks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Horizon {
    /// Expected orders are counted over this many days.
    pub order_days: u32,
    /// Lifetime value sums this many 30-day months …
    pub clv_months: u32,
    /// … each discounted by this rate per month (0.01 = 1 %).
    pub monthly_discount: f64,
}

/// 90 days of orders; twelve months of value at 1 % a month.
pub const DEFAULT_HORIZON: Horizon = Horizon {
    order_days: 90,
    clv_months: 12,
    monthly_discount: 0.01,
};

/// One customer's prediction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Outlook {
    pub p_alive: f64,
    /// Orders expected within the horizon's `order_days`.
    pub expected_orders: f64,
    /// Expected value of one future order (fen).
    pub expected_order_value_fen: Option<i64>,
    /// Discounted value of the orders expected over the horizon's months (fen).
    pub clv_fen: Option<i64>,
}

/// An outlook as stored with the customer: integers that compare exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
pub struct Predicted {
    /// P(alive) in 1/10000.
    pub p_alive: Option<i64>,
    /// Orders expected in the next 90 days, in 1/10000.
    pub expected_orders_90d: Option<i64>,
    pub clv_fen: Option<i64>,
}

impl Predicted {
    pub fn of(o: &Outlook) -> Predicted {
        let scaled = |v: f64| (v.is_finite()).then(|| (v * 10_000.0).round() as i64);
        Predicted {
            p_alive: scaled(o.p_alive),
            expected_orders_90d: scaled(o.expected_orders),
            clv_fen: o.clv_fen,
        }
    }
}

/// Both models applied to one customer.
pub fn outlook(
    bg: &BgNbd,
    gg: Option<&GammaGamma>,
    s: &Summary,
    spend_fen: f64,
    horizon: Horizon,
) -> Outlook {
    let weeks = |days: f64| days / 7.0;
    let order_value = gg.and_then(|g| g.expected_order_value(s.frequency, spend_fen));
    let clv = order_value.map(|value| {
        let mut before = 0.0;
        let mut sum = 0.0;
        for month in 1..=horizon.clv_months {
            let upto = bg.expected_purchases(s, weeks(30.0 * f64::from(month)));
            sum += (upto - before) * value / (1.0 + horizon.monthly_discount).powi(month as i32);
            before = upto;
        }
        sum
    });
    let fen = |v: f64| v.is_finite().then(|| v.round() as i64);
    Outlook {
        p_alive: bg.p_alive(s),
        expected_orders: bg.expected_purchases(s, weeks(f64::from(horizon.order_days))),
        expected_order_value_fen: order_value.and_then(fen),
        clv_fen: clv.and_then(fen),
    }
}

#[cfg(test)]
mod tests;
