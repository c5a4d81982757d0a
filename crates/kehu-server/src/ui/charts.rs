//! Charts drawn on the server as SVG geometry for the templates (no chart
//! library, no inline styles: colours come from CSS classes `s0`…`s7`).
//! Geometry is f64; the numbers shown are the data's own.

use minijinja::{context, Value};

/// Pie slices on a 120 × 120 box (centre 60,60, radius 56), largest data first
/// as given; each with its path, colour index, label, count and share text.
pub fn pie(items: &[(String, i64)]) -> Vec<Value> {
    let total: i64 = items.iter().map(|(_, n)| (*n).max(0)).sum();
    if total == 0 {
        return Vec::new();
    }
    let (cx, cy, r) = (60.0_f64, 60.0_f64, 56.0_f64);
    let point = |turn: f64| {
        let a = turn * std::f64::consts::TAU - std::f64::consts::FRAC_PI_2;
        (cx + r * a.cos(), cy + r * a.sin())
    };
    let mut start = 0.0;
    items
        .iter()
        .enumerate()
        .filter(|(_, (_, n))| *n > 0)
        .map(|(k, (label, n))| {
            let part = *n as f64 / total as f64;
            let d = if part >= 0.9999 {
                // A whole circle: two half arcs.
                format!(
                    "M {cx} {} A {r} {r} 0 1 1 {cx} {} A {r} {r} 0 1 1 {cx} {} Z",
                    cy - r,
                    cy + r,
                    cy - r
                )
            } else {
                let (x0, y0) = point(start);
                let (x1, y1) = point(start + part);
                let large = u8::from(part > 0.5);
                format!("M {cx} {cy} L {x0:.2} {y0:.2} A {r} {r} 0 {large} 1 {x1:.2} {y1:.2} Z")
            };
            start += part;
            let per_mille = (*n * 1000 + total / 2) / total;
            context! {
                d, k => k % 8, label => label.clone(), n => *n,
                share => format!("{}.{} %", per_mille / 10, per_mille % 10),
            }
        })
        .collect()
}

/// Horizontal bars (widths up to 300) with the text to show beside each.
pub fn bars(items: &[(String, i64, String)]) -> Vec<Value> {
    let widest = items.iter().map(|(_, n, _)| *n).max().unwrap_or(0).max(1);
    items
        .iter()
        .enumerate()
        .map(|(k, (label, n, shown))| {
            context! { label => label.clone(), shown => shown.clone(), width => (*n).max(0) * 300 / widest, y => k * 26, k => k % 8 }
        })
        .collect()
}

/// Columns on a 480 × 140 box (bars up to 110 high from the base line at
/// 115), one per item, with the label under each.
pub fn columns(items: &[(String, i64, String)]) -> Vec<Value> {
    let highest = items.iter().map(|(_, n, _)| *n).max().unwrap_or(0).max(1);
    let step = if items.is_empty() {
        0
    } else {
        480 / items.len()
    };
    items
        .iter()
        .enumerate()
        .map(|(k, (label, n, shown))| {
            let h = (*n).max(0) * 110 / highest;
            context! {
                x => k * step + 4, width => step.saturating_sub(8), y => 115 - h, h,
                mid => k * step + step / 2, label => label.clone(), shown => shown.clone(),
            }
        })
        .collect()
}

/// Funnel stages: bars centred on a 480-wide box, widest first as given.
pub fn funnel(items: &[(String, i64)]) -> Vec<Value> {
    let widest = items.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    items
        .iter()
        .enumerate()
        .map(|(k, (label, n))| {
            let width = ((*n).max(0) * 360 / widest).max(2);
            context! { label => label.clone(), n => *n, width, x => 240 - width / 2, y => k * 30, k => k % 8 }
        })
        .collect()
}

/// A polyline's points for a small trend chart (84 × 20), lowest at the bottom.
pub fn sparkline(values: &[i64]) -> String {
    let (lo, hi) = (
        values.iter().copied().min().unwrap_or(0),
        values.iter().copied().max().unwrap_or(0),
    );
    let step = if values.len() > 1 {
        84 / (values.len() as i64 - 1)
    } else {
        0
    };
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let y = if hi == lo {
                10
            } else {
                18 - (v - lo) * 16 / (hi - lo)
            };
            format!("{},{y}", i as i64 * step)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pie_slices_cover_the_circle() {
        let s = pie(&[("A".into(), 1), ("B".into(), 3), ("C".into(), 0)]);
        assert_eq!(s.len(), 2, "empty slices are left out");
        assert_eq!(s[0].get_attr("share").unwrap().to_string(), "25.0 %");
        // A starts at the top and ends at three o'clock.
        assert_eq!(
            s[0].get_attr("d").unwrap().to_string(),
            "M 60 60 L 60.00 4.00 A 56 56 0 0 1 116.00 60.00 Z"
        );
        // B takes the larger arc.
        assert!(s[1].get_attr("d").unwrap().to_string().contains(" 0 1 1 "));
        let whole = pie(&[("A".into(), 5)]);
        assert!(whole[0]
            .get_attr("d")
            .unwrap()
            .to_string()
            .starts_with("M 60 4 A"));
        assert!(pie(&[("A".into(), 0)]).is_empty());
    }

    #[test]
    fn sparklines_run_from_low_to_high() {
        assert_eq!(sparkline(&[0, 5, 10]), "0,18 42,10 84,2");
        assert_eq!(
            sparkline(&[3, 3]),
            "0,10 84,10",
            "a flat line sits in the middle"
        );
        assert_eq!(sparkline(&[7]), "0,10");
    }

    #[test]
    fn bars_columns_and_funnel_scale_to_the_largest() {
        let b = bars(&[
            ("a".into(), 50, "50".into()),
            ("b".into(), 100, "100".into()),
        ]);
        assert_eq!(b[0].get_attr("width").unwrap().to_string(), "150");
        assert_eq!(b[1].get_attr("width").unwrap().to_string(), "300");
        let c = columns(&[("1".into(), 0, "0".into()), ("2".into(), 10, "10".into())]);
        assert_eq!(c[1].get_attr("h").unwrap().to_string(), "110");
        assert_eq!(c[0].get_attr("y").unwrap().to_string(), "115");
        let f = funnel(&[("线索".into(), 100), ("成交".into(), 25)]);
        assert_eq!(f[1].get_attr("width").unwrap().to_string(), "90");
        assert_eq!(f[1].get_attr("x").unwrap().to_string(), "195");
    }
}
