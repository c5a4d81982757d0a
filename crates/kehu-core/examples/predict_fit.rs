//! Times the BG/NBD and Gamma-Gamma fits (bench/predict.sh runs it beside
//! the Python package `lifetimes`):
//!
//! ```text
//! cargo run --release -p kehu-core --example predict_fit -- FILE [RUNS]
//! cargo run --release -p kehu-core --example predict_fit -- --simulate N
//! ```
//! With a summary CSV (`id,frequency,recency,T,monetary_value`): the median
//! and best of RUNS fits and the estimates. With `--simulate N`: N
//! customers drawn from a known process, one fit, and the time it took.

use kehu_core::predict::{simulate, BgNbd, GammaGamma, Summary};
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--simulate") {
        let n: usize = args.get(1).ok_or("--simulate N")?.parse()?;
        let truth = BgNbd {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        };
        let made = Instant::now();
        let customers = simulate::bg_nbd_customers(&truth, n, 104.0, 1);
        let made = made.elapsed();
        let fitting = Instant::now();
        let fit = BgNbd::fit(&customers)?;
        println!(
            "{{\"customers\": {n}, \"simulate_ms\": {:.0}, \"fit_ms\": {:.0}, \"iterations\": {}, \"r\": {:.4}, \"alpha\": {:.4}, \"a\": {:.4}, \"b\": {:.4}}}",
            made.as_secs_f64() * 1e3,
            fitting.elapsed().as_secs_f64() * 1e3,
            fit.iterations,
            fit.params.r,
            fit.params.alpha,
            fit.params.a,
            fit.params.b
        );
        return Ok(());
    }
    let path = args.first().ok_or("FILE [RUNS] or --simulate N")?;
    let runs: usize = args.get(1).map_or(Ok(50), |r| r.parse())?;
    let text = std::fs::read_to_string(path)?;
    let mut summaries = Vec::new();
    let mut spend = Vec::new();
    for line in text.lines().skip(1) {
        let v: Vec<f64> = line
            .split(',')
            .map(|c| c.trim().parse())
            .collect::<Result<_, _>>()?;
        summaries.push(Summary::new(v[1], v[2], v[3]).map_err(|p| p.field())?);
        spend.push((v[1], v[4]));
    }
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        let t = Instant::now();
        let bg = BgNbd::fit(&summaries)?;
        let gg = GammaGamma::fit(&spend)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        last = Some((bg.params, gg.params));
    }
    times.sort_by(f64::total_cmp);
    let (bg, gg) = last.ok_or("RUNS must be ≥ 1")?;
    println!(
        "{{\"customers\": {}, \"runs\": {runs}, \"median_ms\": {:.2}, \"best_ms\": {:.2}, \"r\": {:.6}, \"alpha\": {:.6}, \"a\": {:.6}, \"b\": {:.6}, \"p\": {:.6}, \"q\": {:.6}, \"v\": {:.6}}}",
        summaries.len(),
        times[times.len() / 2],
        times[0],
        bg.r,
        bg.alpha,
        bg.a,
        bg.b,
        gg.p,
        gg.q,
        gg.v
    );
    Ok(())
}
