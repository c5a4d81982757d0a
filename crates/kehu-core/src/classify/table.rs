//! Every customer's measured metric values, as of one date, kept as
//! columns: what a run decides from, and what a server keeps between runs
//! so that re-running the rules (or a draft of them) over everyone is only
//! deciding, not measuring again.
//!
//! Numbers (most metrics: sums, counts, days) are plain `i64` columns; any
//! other value (text fields, dates, lists) is interned per column, so a
//! million customers in the same industry share one string.

use super::facts::Facts;
use super::metric::Metric;
use super::value::Value;
use chrono::NaiveDate;
use std::collections::HashMap;

/// `Value::Missing` in a number column. A measured number equal to it turns
/// the column into an interned one, so no value is ever misread.
const MISSING: i64 = i64::MIN;

/// The measured values of `metrics` for many customers, one row each.
#[derive(Debug, Clone)]
pub struct MetricTable {
    as_of: NaiveDate,
    metrics: Vec<Metric>,
    columns: Vec<Column>,
    customer_ids: Vec<i64>,
    /// False for rows of customers removed since they were measured.
    live: Vec<bool>,
    row_of: HashMap<i64, usize>,
}

#[derive(Debug, Clone)]
enum Column {
    Nums(Vec<i64>),
    Interned {
        ids: Vec<u32>,
        values: Vec<Value>,
        index: HashMap<Value, u32>,
    },
}

impl Column {
    /// Appends a row holding `v`.
    fn push(&mut self, v: Value) {
        // A placeholder, overwritten at once (never read).
        let row = match self {
            Column::Nums(nums) => {
                nums.push(MISSING);
                nums.len() - 1
            }
            Column::Interned { ids, .. } => {
                ids.push(0);
                ids.len() - 1
            }
        };
        self.set(row, v);
    }

    fn set(&mut self, row: usize, v: Value) {
        if let Column::Nums(nums) = self {
            match v {
                Value::Missing => return nums[row] = MISSING,
                Value::Num(n) if n != MISSING => return nums[row] = n,
                _ => self.intern_all(),
            }
        }
        let Column::Interned { ids, values, index } = self else {
            unreachable!("a column that takes any value is interned")
        };
        ids[row] = *index.entry(v).or_insert_with_key(|v| {
            values.push(v.clone());
            (values.len() - 1) as u32
        });
    }

    /// Turns a number column into an interned one (it met a non-number).
    fn intern_all(&mut self) {
        let Column::Nums(nums) = self else { return };
        let mut interned = Column::Interned {
            ids: vec![0; nums.len()],
            values: Vec::new(),
            index: HashMap::new(),
        };
        for (row, &n) in nums.iter().enumerate() {
            interned.set(row, num_value(n));
        }
        *self = interned;
    }

    fn get(&self, row: usize) -> Value {
        match self {
            Column::Nums(nums) => num_value(nums[row]),
            Column::Interned { ids, values, .. } => values[ids[row] as usize].clone(),
        }
    }
}

fn num_value(n: i64) -> Value {
    match n {
        MISSING => Value::Missing,
        n => Value::Num(n),
    }
}

impl MetricTable {
    pub fn new(metrics: Vec<Metric>, as_of: NaiveDate) -> MetricTable {
        MetricTable {
            as_of,
            columns: metrics.iter().map(|_| Column::Nums(Vec::new())).collect(),
            metrics,
            customer_ids: Vec::new(),
            live: Vec::new(),
            row_of: HashMap::new(),
        }
    }

    pub fn as_of(&self) -> NaiveDate {
        self.as_of
    }

    pub fn metrics(&self) -> &[Metric] {
        &self.metrics
    }

    /// Rows, removed ones included (see [`is_live`](Self::is_live)).
    pub fn rows(&self) -> usize {
        self.customer_ids.len()
    }

    /// Customers measured (removed ones not counted).
    pub fn customers(&self) -> usize {
        self.row_of.len()
    }

    pub fn customer_id(&self, row: usize) -> i64 {
        self.customer_ids[row]
    }

    pub fn is_live(&self, row: usize) -> bool {
        self.live[row]
    }

    pub fn row_of(&self, customer_id: i64) -> Option<usize> {
        self.row_of.get(&customer_id).copied()
    }

    /// A customer's row: the value of every metric of this table, as of its day.
    pub fn measure(&self, f: &Facts) -> Vec<Value> {
        Metric::measure_each(&self.metrics, f, self.as_of)
    }

    /// Stores a customer's values (one per metric, in order): a new row, or
    /// the customer's row replaced. Returns the row.
    pub fn upsert(&mut self, customer_id: i64, values: Vec<Value>) -> usize {
        assert_eq!(values.len(), self.metrics.len(), "one value per metric");
        match self.row_of.get(&customer_id) {
            Some(&row) => {
                for (c, v) in self.columns.iter_mut().zip(values) {
                    c.set(row, v);
                }
                row
            }
            None => {
                for (c, v) in self.columns.iter_mut().zip(values) {
                    c.push(v);
                }
                let row = self.customer_ids.len();
                self.customer_ids.push(customer_id);
                self.live.push(true);
                self.row_of.insert(customer_id, row);
                row
            }
        }
    }

    /// Forgets a customer (deleted). Their row stays, dead, so other rows keep their index.
    pub fn remove(&mut self, customer_id: i64) -> Option<usize> {
        let row = self.row_of.remove(&customer_id)?;
        self.live[row] = false;
        Some(row)
    }

    /// The value of column `column` in `row`.
    pub fn value(&self, row: usize, column: usize) -> Value {
        self.columns[column].get(row)
    }

    /// The column of `metric`, if this table measures it.
    pub fn column_of(&self, metric: &Metric) -> Option<usize> {
        self.metrics.iter().position(|m| m == metric)
    }

    /// The numbers of live rows in a column (missing values left out), for ranking.
    pub(crate) fn live_nums(&self, column: usize) -> Vec<i64> {
        match &self.columns[column] {
            Column::Nums(nums) => nums
                .iter()
                .zip(&self.live)
                .filter(|(&n, &live)| live && n != MISSING)
                .map(|(&n, _)| n)
                .collect(),
            Column::Interned { ids, values, .. } => ids
                .iter()
                .zip(&self.live)
                .filter(|(_, &live)| live)
                .filter_map(|(&id, _)| values[id as usize].num())
                .collect(),
        }
    }

    /// The number in `row` of a number column (None: missing), or the
    /// interned value of any other column.
    pub(crate) fn cell(&self, row: usize, column: usize) -> Cell<'_> {
        match &self.columns[column] {
            Column::Nums(nums) => Cell::Num(match nums[row] {
                MISSING => None,
                n => Some(n),
            }),
            Column::Interned { ids, values, .. } => Cell::Interned(&values[ids[row] as usize]),
        }
    }
}

/// One value of a table, borrowed.
pub(crate) enum Cell<'a> {
    Num(Option<i64>),
    Interned(&'a Value),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::metric::{FieldRef, Metric};

    fn table(n: usize) -> MetricTable {
        let day = NaiveDate::from_ymd_opt(2026, 11, 23).expect("date");
        let metric = Metric::Field(FieldRef::Employees);
        MetricTable::new(vec![metric; n], day)
    }

    #[test]
    fn numbers_text_and_the_missing_marker_all_read_back() {
        let mut t = table(2);
        t.upsert(7, vec![Value::Num(5), Value::Text("制造业".into())]);
        t.upsert(3, vec![Value::Missing, Value::Text("制造业".into())]);
        // A number equal to the marker turns its column into an interned one.
        t.upsert(9, vec![Value::Num(i64::MIN), Value::Missing]);
        assert_eq!(t.value(0, 0), Value::Num(5));
        assert_eq!(t.value(1, 0), Value::Missing);
        assert_eq!(t.value(2, 0), Value::Num(i64::MIN));
        assert_eq!(t.value(1, 1), Value::Text("制造业".into()));
        assert_eq!(t.value(2, 1), Value::Missing);
        // Replacing a row keeps its index; removing one keeps the others'.
        assert_eq!(t.upsert(3, vec![Value::Num(8), Value::Bool(true)]), 1);
        assert_eq!(t.value(1, 0), Value::Num(8));
        assert_eq!(t.value(1, 1), Value::Bool(true));
        assert_eq!(t.remove(7), Some(0));
        assert_eq!((t.rows(), t.customers()), (3, 2));
        assert_eq!(t.row_of(9), Some(2));
        assert_eq!(t.live_nums(0), vec![8, i64::MIN]);
        assert!(t.live_nums(1).is_empty());
    }
}
