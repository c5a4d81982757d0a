//! What a tag says about behaviour: how often its customers buy again and
//! how satisfied they are, against everyone else — the numbers of the
//! quarterly tag review and of the reports.

use roaring::RoaringBitmap;
use serde::Serialize;

/// A tag's customers against the rest of a universe.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TagBehaviour {
    /// Customers of the universe carrying the tag.
    pub customers: u64,
    /// Their share of the universe (0–1).
    pub share: f64,
    /// Share of the tag's customers that bought again, and of the rest.
    pub repurchase_with: Option<f64>,
    pub repurchase_without: Option<f64>,
    /// Phi coefficient between carrying the tag and buying again (−1…1).
    pub repurchase_correlation: Option<f64>,
    /// Mean satisfaction score of the tag's customers that have one, and of the rest.
    pub satisfaction_with: Option<f64>,
    pub satisfaction_without: Option<f64>,
    /// Point-biserial correlation between carrying the tag and the score (−1…1).
    pub satisfaction_correlation: Option<f64>,
}

/// `tagged` within `universe`; `repurchased`: the customers who bought
/// again; `scores`: (customer, mean satisfaction) for those with a score.
pub fn tag_behaviour(
    tagged: &RoaringBitmap,
    universe: &RoaringBitmap,
    repurchased: &RoaringBitmap,
    scores: &[(u32, f64)],
) -> TagBehaviour {
    let n = universe.len() as f64;
    let x = tagged & universe;
    let y = repurchased & universe;
    let (n1, ny, n11) = (x.len() as f64, y.len() as f64, (&x & &y).len() as f64);
    let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b);
    let phi_den = (n1 * (n - n1) * ny * (n - ny)).sqrt();
    let repurchase_correlation = (phi_den > 0.0).then(|| (n * n11 - n1 * ny) / phi_den);

    let (mut s1, mut c1, mut s0, mut c0, mut sum_sq) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(id, s) in scores.iter().filter(|(id, _)| universe.contains(*id)) {
        if x.contains(id) {
            s1 += s;
            c1 += 1.0;
        } else {
            s0 += s;
            c0 += 1.0;
        }
        sum_sq += s * s;
    }
    let total = c1 + c0;
    let mean = ratio(s1 + s0, total);
    let sd = mean.map(|m| (sum_sq / total - m * m).max(0.0).sqrt());
    let (m1, m0) = (ratio(s1, c1), ratio(s0, c0));
    let satisfaction_correlation = match (m1, m0, sd) {
        (Some(a), Some(b), Some(sd)) if sd > 0.0 => {
            let p = c1 / total;
            Some((a - b) / sd * (p * (1.0 - p)).sqrt())
        }
        _ => None,
    };
    TagBehaviour {
        customers: x.len(),
        share: ratio(n1, n).unwrap_or(0.0),
        repurchase_with: ratio(n11, n1),
        repurchase_without: ratio(ny - n11, n - n1),
        repurchase_correlation,
        satisfaction_with: m1,
        satisfaction_without: m0,
        satisfaction_correlation,
    }
}

/// The review's threshold: tags on fewer customers than this share are
/// proposed for removal.
pub const REVIEW_SHARE: f64 = 0.05;

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ids: impl IntoIterator<Item = u32>) -> RoaringBitmap {
        ids.into_iter().collect()
    }

    #[test]
    fn perfect_negative_and_no_correlation() {
        let u = set(0..100);
        // Tag = bought again exactly.
        let b = tag_behaviour(&set(0..30), &u, &set(0..30), &[]);
        assert_eq!(b.customers, 30);
        assert!((b.share - 0.3).abs() < 1e-12);
        assert_eq!(b.repurchase_with, Some(1.0));
        assert_eq!(b.repurchase_without, Some(0.0));
        assert!((b.repurchase_correlation.expect("phi") - 1.0).abs() < 1e-12);
        // The opposite.
        let b = tag_behaviour(&set(0..30), &u, &set(30..100), &[]);
        assert!((b.repurchase_correlation.expect("phi") + 1.0).abs() < 1e-12);
        // Independent: half of each group bought again.
        let evens = set((0..100).filter(|i| i % 2 == 0));
        let b = tag_behaviour(&set(0..50), &u, &evens, &[]);
        assert!(b.repurchase_correlation.expect("phi").abs() < 1e-12);
        // Everyone or no one tagged: no correlation to speak of.
        assert_eq!(
            tag_behaviour(&u, &u, &evens, &[]).repurchase_correlation,
            None
        );
        assert_eq!(
            tag_behaviour(&set([]), &u, &evens, &[]).repurchase_with,
            None
        );
    }

    #[test]
    fn satisfaction_by_tag() {
        let u = set(0..10);
        // Tagged 0..5 score 5, the rest 3: means 5 and 3, correlation 1.
        let scores: Vec<(u32, f64)> = (0..10)
            .map(|i| (i, if i < 5 { 5.0 } else { 3.0 }))
            .collect();
        let b = tag_behaviour(&set(0..5), &u, &set([]), &scores);
        assert_eq!(
            (b.satisfaction_with, b.satisfaction_without),
            (Some(5.0), Some(3.0))
        );
        assert!((b.satisfaction_correlation.expect("r") - 1.0).abs() < 1e-12);
        // Scores outside the universe are left out.
        let b = tag_behaviour(&set(0..5), &set(0..5), &set([]), &scores);
        assert_eq!(b.satisfaction_without, None);
        assert_eq!(b.satisfaction_correlation, None);
    }
}
