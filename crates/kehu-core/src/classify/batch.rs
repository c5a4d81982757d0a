//! Evaluating a set of schemes over many customers, fast: every distinct
//! metric is measured once per customer and shared by the schemes that use
//! it (several presets read the same 12-month purchases), and the values
//! live in one buffer reused from customer to customer. Gives exactly the
//! decisions of [`Scheme::evaluate`] (tested).

use super::eval::{ClassContext, Decision, Population, Slotted};
use super::facts::Facts;
use super::metric::Metric;
use super::scheme::Scheme;
use super::value::Value;
use chrono::NaiveDate;

/// The schemes of a run, in evaluation order, with their shared metrics.
pub struct SetEvaluator<'s> {
    /// None: not evaluated in this run (nothing of it is measured).
    schemes: Vec<Option<&'s Scheme>>,
    as_of: NaiveDate,
    /// Distinct metrics (percentiles excepted), in buffer order.
    metrics: Vec<&'s Metric>,
    /// Per scheme, per indicator: its slot in the value buffer.
    slots: Vec<Vec<usize>>,
    /// Percentile indicators, filled after the metrics.
    ranks: Vec<Rank>,
}

struct Rank {
    scheme: usize,
    /// The ranked indicator (its index in the scheme, as the population keys it).
    source: usize,
    slot: usize,
}

/// The value buffer of one worker.
#[derive(Debug, Default)]
pub struct Scratch {
    values: Vec<Value>,
}

impl<'s> SetEvaluator<'s> {
    /// `schemes` in evaluation order; None for a scheme this run does not evaluate.
    pub fn new(schemes: impl IntoIterator<Item = Option<&'s Scheme>>, as_of: NaiveDate) -> Self {
        let schemes: Vec<Option<&Scheme>> = schemes.into_iter().collect();
        let mut metrics: Vec<&Metric> = Vec::new();
        let mut slots = Vec::with_capacity(schemes.len());
        let mut pending_ranks = Vec::new();
        for (si, s) in schemes.iter().enumerate() {
            let Some(s) = s else {
                slots.push(Vec::new());
                continue;
            };
            let mut mine = Vec::with_capacity(s.indicators.len());
            for (ii, ind) in s.indicators.iter().enumerate() {
                if let Metric::Percentile { of } = ind.metric {
                    pending_ranks.push((si, ii, of));
                    mine.push(usize::MAX); // set below, once the metrics are counted
                    continue;
                }
                let slot = match metrics.iter().position(|m| **m == ind.metric) {
                    Some(i) => i,
                    None => {
                        metrics.push(&ind.metric);
                        metrics.len() - 1
                    }
                };
                mine.push(slot);
            }
            slots.push(mine);
        }
        let mut ranks = Vec::with_capacity(pending_ranks.len());
        for (k, (si, ii, of)) in pending_ranks.into_iter().enumerate() {
            let slot = metrics.len() + k;
            slots[si][ii] = slot;
            ranks.push(Rank {
                scheme: si,
                source: of,
                slot,
            });
        }
        SetEvaluator {
            schemes,
            as_of,
            metrics,
            slots,
            ranks,
        }
    }

    /// How many distinct values one customer needs (metrics + percentiles).
    pub fn width(&self) -> usize {
        self.metrics.len() + self.ranks.len()
    }

    pub fn scratch(&self) -> Scratch {
        Scratch {
            values: vec![Value::Missing; self.width()],
        }
    }

    /// Measures everything the schemes read for one customer.
    /// `populations[i]` ranks scheme `i`'s percentile indicators.
    pub fn measure(&self, f: &Facts, populations: &[&Population], scratch: &mut Scratch) {
        scratch.values.resize(self.width(), Value::Missing);
        for (slot, m) in self.metrics.iter().enumerate() {
            scratch.values[slot] = m.measure(f, self.as_of).value;
        }
        for r in &self.ranks {
            let source = self.slots[r.scheme][r.source];
            let share = scratch.values[source]
                .num()
                .and_then(|n| populations[r.scheme].share_above(r.source, n));
            scratch.values[r.slot] = share.map_or(Value::Missing, Value::Num);
        }
    }

    /// Scheme `i`'s decision from the values [`measure`](Self::measure) left
    /// in `scratch`. Panics if the run does not evaluate scheme `i`.
    pub fn decide(&self, i: usize, scratch: &Scratch, ctx: ClassContext<'_>) -> Decision {
        let scheme = self.schemes[i].expect("decide is only asked of evaluated schemes");
        scheme.decide(
            &Slotted {
                all: &scratch.values,
                slots: &self.slots[i],
            },
            ctx,
        )
    }
}
