//! Customers drawn from a known BG/NBD process, for tests (does the fitter
//! recover what generated the data?) and benchmarks (a million customers
//! without a million customers' orders).

use super::{BgNbd, Summary};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// `n` customers observed for 1–`max_weeks` weeks each, from a seeded generator.
pub fn bg_nbd_customers(truth: &BgNbd, n: usize, max_weeks: f64, seed: u64) -> Vec<Summary> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let t = 1.0 + rng.gen::<f64>() * (max_weeks - 1.0);
            let rate = gamma(&mut rng, truth.r) / truth.alpha;
            let x_drop = gamma(&mut rng, truth.a);
            let dropout = x_drop / (x_drop + gamma(&mut rng, truth.b));
            let (mut now, mut x, mut last) = (0.0, 0u32, 0.0);
            loop {
                now += -(1.0 - rng.gen::<f64>()).ln() / rate;
                if now > t {
                    break;
                }
                x += 1;
                last = now;
                if rng.gen::<f64>() < dropout {
                    break;
                }
            }
            Summary {
                frequency: f64::from(x),
                recency: last,
                t,
            }
        })
        .collect()
}

/// Gamma(shape, 1) by Marsaglia & Tsang (2000); shapes below 1 boosted.
fn gamma(rng: &mut StdRng, shape: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = 1.0 - rng.gen::<f64>();
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let z = normal(rng);
        let v = (1.0 + c * z).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = 1.0 - rng.gen::<f64>();
        if u.ln() < 0.5 * z * z + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>();
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}
