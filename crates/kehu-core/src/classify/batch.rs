//! Evaluating a set of schemes over many customers, fast: every distinct
//! metric is measured once per customer and shared by the schemes that use
//! it (several presets read the same 12-month purchases), and the values
//! live in one buffer reused from customer to customer. Gives exactly the
//! decisions of [`Scheme::evaluate`] (tested).

use super::eval::{ClassContext, IndicatorValues, Population, Ranked, Verdict};
use super::facts::Facts;
use super::metric::Metric;
use super::scheme::Scheme;
use super::table::{Cell, MetricTable};
use super::value::Value;
use chrono::NaiveDate;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

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

/// The buffers of one worker: values, and the levels of the decision at hand.
#[derive(Debug, Default)]
pub struct Scratch {
    values: Vec<Value>,
    levels: Vec<usize>,
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
            levels: Vec::new(),
        }
    }

    /// The distinct metrics, in the order [`measure_metrics`](Self::measure_metrics) gives them.
    pub fn metrics(&self) -> Vec<Metric> {
        self.metrics.iter().map(|m| (*m).clone()).collect()
    }

    pub fn as_of(&self) -> NaiveDate {
        self.as_of
    }

    /// One customer's value of every distinct metric (a row of a [`MetricTable`]).
    pub fn measure_metrics(&self, f: &Facts) -> Vec<Value> {
        Metric::measure_each(self.metrics.iter().copied(), f, self.as_of)
    }

    /// Where this set's metrics are in `table`; Err with the metrics the
    /// table lacks (or all of them, if it was measured on another day).
    pub fn bind(&self, table: &MetricTable) -> Result<Binding, Vec<Metric>> {
        if table.as_of() != self.as_of {
            return Err(self.metrics());
        }
        let found: Vec<Option<usize>> = self.metrics.iter().map(|m| table.column_of(m)).collect();
        if found.iter().all(Option::is_some) {
            Ok(Binding {
                columns: found.into_iter().flatten().collect(),
            })
        } else {
            Err(self
                .metrics
                .iter()
                .zip(found)
                .filter(|(_, c)| c.is_none())
                .map(|(m, _)| (*m).clone())
                .collect())
        }
    }

    /// The percentile populations of every evaluated scheme, ranked over
    /// the table's live rows (a column ranked by several schemes is sorted once).
    pub fn populations(&self, binding: &Binding, table: &MetricTable) -> Vec<Population> {
        let mut sorted: HashMap<usize, Arc<Ranked>> = HashMap::new();
        self.schemes
            .iter()
            .enumerate()
            .map(|(si, s)| {
                let Some(s) = s else {
                    return Population::default();
                };
                let by_source: BTreeMap<usize, Arc<Ranked>> = s
                    .ranked_sources()
                    .into_iter()
                    .map(|source| {
                        let column = binding.columns[self.slots[si][source]];
                        let ranked = sorted.entry(column).or_insert_with(|| {
                            let mut v = table.live_nums(column);
                            v.sort_unstable();
                            Arc::new(Ranked::new(v))
                        });
                        (source, ranked.clone())
                    })
                    .collect();
                Population::from_ranked(by_source)
            })
            .collect()
    }

    /// Makes `row` of the table the customer [`decide_row`](Self::decide_row)
    /// decides: its numbers go to the scratch buffer, with the percentile
    /// ranks `populations[i]` give scheme `i`.
    pub fn load(
        &self,
        binding: &Binding,
        table: &MetricTable,
        row: usize,
        populations: &[&Population],
        scratch: &mut Scratch,
    ) {
        scratch.values.resize(self.width(), Value::Missing);
        for (slot, &column) in binding.columns.iter().enumerate() {
            if let Cell::Num(n) = table.cell(row, column) {
                scratch.values[slot] = n.map_or(Value::Missing, Value::Num);
            }
        }
        for r in &self.ranks {
            let source = self.slots[r.scheme][r.source];
            let n = match table.cell(row, binding.columns[source]) {
                Cell::Num(n) => n,
                Cell::Interned(v) => v.num(),
            };
            let share = n.and_then(|n| populations[r.scheme].share_above(r.source, n));
            scratch.values[r.slot] = share.map_or(Value::Missing, Value::Num);
        }
    }

    /// Scheme `i`'s verdict for the row [`load`](Self::load) loaded
    /// (what [`Scheme::decide`] gives, without allocating).
    pub fn decide_row(
        &self,
        i: usize,
        binding: &Binding,
        table: &MetricTable,
        row: usize,
        scratch: &mut Scratch,
        ctx: ClassContext<'_>,
    ) -> Verdict {
        let scheme = self.schemes[i].expect("decide is only asked of evaluated schemes");
        scheme.decide_with(
            &RowView {
                scratch: &scratch.values,
                slots: &self.slots[i],
                columns: &binding.columns,
                table,
                row,
            },
            ctx,
            &mut scratch.levels,
        )
    }
}

/// Where a [`SetEvaluator`]'s metrics are in a [`MetricTable`]: metric slot → column.
#[derive(Debug, Clone)]
pub struct Binding {
    columns: Vec<usize>,
}

/// One scheme's indicators for one row: numbers from the scratch buffer
/// (loaded), other values straight from the table's interned column.
struct RowView<'a> {
    scratch: &'a [Value],
    slots: &'a [usize],
    columns: &'a [usize],
    table: &'a MetricTable,
    row: usize,
}

impl IndicatorValues for RowView<'_> {
    fn at(&self, indicator: usize) -> &Value {
        let slot = self.slots[indicator];
        if let Some(&column) = self.columns.get(slot) {
            if let Cell::Interned(v) = self.table.cell(self.row, column) {
                return v;
            }
        }
        &self.scratch[slot]
    }
}
