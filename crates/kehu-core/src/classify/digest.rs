//! A customer's orders and interactions as one compact byte string (the
//! *fact digest*), kept beside the customer so that a run over the whole
//! base reads one short value per customer instead of twenty order rows.
//!
//! Layout (all integers LEB128 varints, signed ones zigzag-encoded):
//!
//! ```text
//! version=1
//! line count L, then L × (byte length, UTF-8)      product lines, numbered 1..=L
//! order count N, then N × (day delta, amount_fen, line number or 0)
//! interaction count M, then M × (day delta, kind index, severity index+1 or 0,
//!                                0, or 1 and the satisfaction)
//! ```
//!
//! A day delta is from the previous record of the same list (the first one
//! from 1970-01-01), so sorted lists take one or two bytes a date. Records
//! keep the order they were given in; decoding gives back exactly the
//! facts that were encoded (tested).

use super::facts::{Facts, InteractionFact, OrderFact};
use crate::interaction::{InteractionKind, Severity};
use chrono::NaiveDate;
use std::collections::HashMap;
use std::sync::Arc;

const VERSION: u8 = 1;

/// Why a digest could not be read back (a bug or a damaged row; the caller
/// falls back to the records themselves).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("fact digest of customer is unreadable: {0}")]
pub struct DigestError(&'static str);

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date")
}

fn day_number(d: NaiveDate) -> i64 {
    (d - epoch()).num_days()
}

/// Encodes orders and interactions (in the order given).
pub fn encode(orders: &[OrderFact], interactions: &[InteractionFact]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + orders.len() * 6 + interactions.len() * 4);
    out.push(VERSION);
    let mut lines: Vec<&str> = Vec::new();
    for line in orders.iter().filter_map(|o| o.line.as_deref()) {
        if !lines.contains(&line) {
            lines.push(line);
        }
    }
    put_unsigned(&mut out, lines.len() as u64);
    for line in &lines {
        put_unsigned(&mut out, line.len() as u64);
        out.extend_from_slice(line.as_bytes());
    }
    put_unsigned(&mut out, orders.len() as u64);
    let mut day = 0;
    for o in orders {
        let d = day_number(o.on);
        put_signed(&mut out, d - day);
        day = d;
        put_signed(&mut out, o.amount_fen);
        let number = o
            .line
            .as_deref()
            .and_then(|l| lines.iter().position(|x| *x == l))
            .map_or(0, |i| i + 1);
        put_unsigned(&mut out, number as u64);
    }
    put_unsigned(&mut out, interactions.len() as u64);
    let mut day = 0;
    for i in interactions {
        let d = day_number(i.on);
        put_signed(&mut out, d - day);
        day = d;
        let kind = InteractionKind::ALL
            .iter()
            .position(|k| *k == i.kind)
            .expect("a kind is one of ALL");
        put_unsigned(&mut out, kind as u64);
        let severity = i
            .severity
            .and_then(|s| Severity::ALL.iter().position(|x| *x == s))
            .map_or(0, |n| n + 1);
        put_unsigned(&mut out, severity as u64);
        match i.satisfaction {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                put_signed(&mut out, s);
            }
        }
    }
    out
}

/// Reads digests back into [`Facts`], sharing one `Arc<str>` per product
/// line across every digest it reads.
#[derive(Default)]
pub struct DigestReader {
    lines: HashMap<Box<str>, Arc<str>>,
}

impl DigestReader {
    /// A digest's orders alone (what a report reads); the interactions
    /// after them are not decoded.
    pub fn read_orders(&mut self, digest: &[u8]) -> Result<Vec<OrderFact>, DigestError> {
        self.orders(&mut Bytes(digest))
    }

    /// The version, the product lines and the orders, leaving `r` at the interactions.
    fn orders(&mut self, r: &mut Bytes<'_>) -> Result<Vec<OrderFact>, DigestError> {
        if r.byte()? != VERSION {
            return Err(DigestError("unknown version"));
        }
        let line_count = r.count()?;
        let mut lines = Vec::with_capacity(line_count);
        for _ in 0..line_count {
            let len = r.count()?;
            let text =
                std::str::from_utf8(r.take(len)?).map_err(|_| DigestError("line is not UTF-8"))?;
            let shared = match self.lines.get(text) {
                Some(l) => l.clone(),
                None => {
                    let l: Arc<str> = Arc::from(text);
                    self.lines.insert(text.into(), l.clone());
                    l
                }
            };
            lines.push(shared);
        }
        let order_count = r.count()?;
        let mut orders = Vec::with_capacity(order_count);
        let mut day = 0;
        for _ in 0..order_count {
            day += r.signed()?;
            let amount_fen = r.signed()?;
            let line = match r.index()? {
                0 => None,
                n => Some(lines.get(n - 1).ok_or(DigestError("line number"))?.clone()),
            };
            orders.push(OrderFact {
                on: date_of(day)?,
                amount_fen,
                line,
            });
        }
        Ok(orders)
    }

    /// Sets `facts.orders` and `facts.interactions` from a digest.
    pub fn read_into(&mut self, digest: &[u8], facts: &mut Facts) -> Result<(), DigestError> {
        let mut r = Bytes(digest);
        let orders = self.orders(&mut r)?;
        let interaction_count = r.count()?;
        let mut interactions = Vec::with_capacity(interaction_count);
        let mut day = 0;
        for _ in 0..interaction_count {
            day += r.signed()?;
            let kind = *InteractionKind::ALL
                .get(r.index()?)
                .ok_or(DigestError("interaction kind"))?;
            let severity = match r.index()? {
                0 => None,
                n => Some(*Severity::ALL.get(n - 1).ok_or(DigestError("severity"))?),
            };
            let satisfaction = match r.byte()? {
                0 => None,
                1 => Some(r.signed()?),
                _ => return Err(DigestError("satisfaction")),
            };
            interactions.push(InteractionFact {
                on: date_of(day)?,
                kind,
                severity,
                satisfaction,
            });
        }
        if !r.0.is_empty() {
            return Err(DigestError("trailing bytes"));
        }
        facts.orders = orders;
        facts.interactions = interactions;
        Ok(())
    }
}

fn date_of(day: i64) -> Result<NaiveDate, DigestError> {
    epoch()
        .checked_add_signed(chrono::Duration::try_days(day).ok_or(DigestError("date"))?)
        .ok_or(DigestError("date"))
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_unsigned(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_signed(out: &mut Vec<u8>, v: i64) {
    put_unsigned(out, zigzag(v));
}

struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn byte(&mut self) -> Result<u8, DigestError> {
        let (&b, rest) = self.0.split_first().ok_or(DigestError("truncated"))?;
        self.0 = rest;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DigestError> {
        if n > self.0.len() {
            return Err(DigestError("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn unsigned(&mut self) -> Result<u64, DigestError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(DigestError("varint too long"))
    }

    fn signed(&mut self) -> Result<i64, DigestError> {
        Ok(unzigzag(self.unsigned()?))
    }

    /// A length or a number of records; never more than the bytes left
    /// (every record takes at least one), so a damaged count cannot ask for
    /// a huge allocation.
    fn count(&mut self) -> Result<usize, DigestError> {
        let n = self.index()?;
        (n <= self.0.len()).then_some(n).ok_or(DigestError("count"))
    }

    /// A position in a list (checked against the list by the caller).
    fn index(&mut self) -> Result<usize, DigestError> {
        usize::try_from(self.unsigned()?).map_err(|_| DigestError("index"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn round_trip(orders: Vec<OrderFact>, interactions: Vec<InteractionFact>) -> Facts {
        let bytes = encode(&orders, &interactions);
        let mut back = Facts::default();
        DigestReader::default()
            .read_into(&bytes, &mut back)
            .unwrap();
        assert_eq!(back.orders, orders);
        assert_eq!(back.interactions, interactions);
        back
    }

    #[test]
    fn empty_customer_is_four_bytes() {
        assert_eq!(encode(&[], &[]), vec![VERSION, 0, 0, 0]);
        round_trip(vec![], vec![]);
    }

    #[test]
    fn orders_and_interactions_come_back_exactly() {
        let a: Arc<str> = Arc::from("产品A");
        let orders = vec![
            OrderFact {
                on: d("1969-12-31"),
                amount_fen: 0,
                line: None,
            },
            OrderFact {
                on: d("2024-03-12"),
                amount_fen: 100_000_000,
                line: Some(a.clone()),
            },
            OrderFact {
                on: d("2024-03-12"),
                amount_fen: 1,
                line: Some(Arc::from("产品B")),
            },
            // Out of order dates still round-trip (deltas are signed).
            OrderFact {
                on: d("2023-01-01"),
                amount_fen: i64::MAX,
                line: Some(a),
            },
        ];
        let interactions = InteractionKind::ALL
            .iter()
            .enumerate()
            .map(|(n, &kind)| InteractionFact {
                on: d("2024-01-01") + chrono::Duration::days(n as i64 * 40),
                kind,
                severity: Severity::ALL.get(n % (Severity::ALL.len() + 1)).copied(),
                satisfaction: [
                    None,
                    Some(0),
                    Some(5),
                    Some(-3),
                    Some(i64::MIN),
                    Some(i64::MAX),
                ][n % 6],
            })
            .collect();
        round_trip(orders, interactions);
    }

    #[test]
    fn product_lines_are_shared_across_digests() {
        let o = |l: &str| {
            vec![OrderFact {
                on: d("2024-01-01"),
                amount_fen: 5,
                line: Some(Arc::from(l)),
            }]
        };
        let mut reader = DigestReader::default();
        let (mut x, mut y) = (Facts::default(), Facts::default());
        reader.read_into(&encode(&o("产品C"), &[]), &mut x).unwrap();
        reader.read_into(&encode(&o("产品C"), &[]), &mut y).unwrap();
        let (a, b) = (
            x.orders[0].line.clone().unwrap(),
            y.orders[0].line.clone().unwrap(),
        );
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn damaged_digests_are_refused_not_misread() {
        let good = encode(
            &[OrderFact {
                on: d("2024-01-01"),
                amount_fen: 5,
                line: Some(Arc::from("x")),
            }],
            &[],
        );
        let mut reader = DigestReader::default();
        for cut in 0..good.len() {
            assert!(
                reader
                    .read_into(&good[..cut], &mut Facts::default())
                    .is_err(),
                "cut {cut}"
            );
        }
        let mut longer = good.clone();
        longer.push(0);
        assert!(reader.read_into(&longer, &mut Facts::default()).is_err());
        let mut other_version = good;
        other_version[0] = 9;
        assert!(reader
            .read_into(&other_version, &mut Facts::default())
            .is_err());
    }

    proptest! {
        #[test]
        fn any_facts_round_trip(
            orders in proptest::collection::vec((-30_000i64..80_000, any::<i64>(), proptest::option::of("[a-z产品]{0,4}")), 0..40),
            inters in proptest::collection::vec((-30_000i64..80_000, 0usize..64, 0usize..8, proptest::option::of(any::<i64>())), 0..40),
        ) {
            let orders = orders.into_iter().map(|(day, amount_fen, line)| OrderFact {
                on: epoch() + chrono::Duration::days(day),
                amount_fen,
                line: line.map(|l| Arc::from(l.as_str())),
            }).collect();
            let inters = inters.into_iter().map(|(day, k, s, satisfaction)| InteractionFact {
                on: epoch() + chrono::Duration::days(day),
                kind: InteractionKind::ALL[k % InteractionKind::ALL.len()],
                severity: Severity::ALL.get(s).copied(),
                satisfaction,
            }).collect();
            round_trip(orders, inters);
        }
    }
}
