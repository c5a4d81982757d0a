use super::*;

/// The CDNOW cohort of the BG/NBD paper (2,357 customers, weeks, USD).
fn cdnow() -> Vec<(Summary, f64)> {
    include_str!("../../testdata/cdnow_summary.csv")
        .lines()
        .skip(1)
        .map(|line| {
            let v: Vec<f64> = line
                .split(',')
                .map(|c| c.trim().parse().expect("number"))
                .collect();
            (Summary::new(v[1], v[2], v[3]).expect("valid row"), v[4])
        })
        .collect()
}

/// Equal to `sig` significant digits.
fn same_digits(got: f64, want: f64, sig: i32) -> bool {
    let scale = 10f64.powi(sig - 1 - want.abs().log10().floor() as i32);
    (got * scale).round() == (want * scale).round()
}

#[test]
fn bg_nbd_fit_reproduces_the_paper_on_cdnow() {
    let rows = cdnow();
    let summaries: Vec<Summary> = rows.iter().map(|r| r.0).collect();
    let fit = BgNbd::fit(&summaries).expect("fits");
    let p = fit.params;
    // Fader, Hardie & Lee (2005), p. 281: r 0.243, α 4.414, a 0.793, b 2.426; LL −9582.4.
    for (name, got, want) in [
        ("r", p.r, 0.243),
        ("alpha", p.alpha, 4.414),
        ("a", p.a, 0.793),
        ("b", p.b, 2.426),
    ] {
        assert!(same_digits(got, want, 3), "{name}: {got} vs {want}");
    }
    assert!(
        (fit.log_likelihood - -9582.4).abs() < 0.05,
        "{}",
        fit.log_likelihood
    );
    assert_eq!(fit.customers, 2357);
    assert_eq!(fit.penalizer, 0.0);
    // And `lifetimes` 0.11.3 on the same file, to six digits.
    for (got, want) in [
        (p.r, 0.242_592_928_279_821_8),
        (p.alpha, 4.413_532_265_271_819),
        (p.a, 0.792_885_966_440_688_2),
        (p.b, 2.425_752_382_625_86),
    ] {
        assert!(same_digits(got, want, 6), "{got} vs {want}");
    }
}

#[test]
fn gamma_gamma_fit_reproduces_the_paper_on_cdnow() {
    let spend: Vec<(f64, f64)> = cdnow().iter().map(|(s, m)| (s.frequency, *m)).collect();
    let fit = GammaGamma::fit(&spend).expect("fits");
    let GammaGamma { p, q, v } = fit.params;
    assert!(same_digits(p, 6.25, 3), "p {p}");
    assert!(same_digits(q, 3.74, 3), "q {q}");
    assert!(same_digits(v, 15.44, 3), "v {v}");
    // lifetimes 0.11.3 on the same rows, to six digits.
    for (got, want) in [
        (p, 6.248_802_496_075_312),
        (q, 3.744_588_460_923_114),
        (v, 15.447_748_064_929_14),
    ] {
        assert!(same_digits(got, want, 6), "{got} vs {want}");
    }
    assert_eq!(fit.customers, 946);
}

#[test]
fn per_customer_predictions_agree_with_lifetimes() {
    let rows = cdnow();
    let summaries: Vec<Summary> = rows.iter().map(|r| r.0).collect();
    let spend: Vec<(f64, f64)> = rows.iter().map(|(s, m)| (s.frequency, *m)).collect();
    let bg = BgNbd::fit(&summaries).expect("fits").params;
    let gg = GammaGamma::fit(&spend).expect("fits").params;
    // (row, P(alive), purchases in the next 90 days, expected order value) from lifetimes.
    let expected = [
        (
            0,
            0.726_609_136_799_059,
            0.452_448_613_686_516_57,
            24.658_616_189_236_472,
        ),
        (
            1,
            0.212_227_388_072_209_9,
            0.073_921_670_855_482_28,
            18.911_479_869_929_103,
        ),
        (3, 1.0, 0.069_074_701_921_746_38, 35.171_002_152_506_65),
        (
            10,
            0.491_426_704_580_813_44,
            0.705_186_081_286_608_3,
            29.902_779_930_379_033,
        ),
        (
            156,
            0.969_133_594_004_404_7,
            7.759_825_890_439_693,
            26.392_947_663_530_567,
        ),
        (1500, 1.0, 0.083_356_667_208_454_96, 35.171_002_152_506_65),
    ];
    for (i, p_alive, orders, value) in expected {
        let (s, m) = rows[i];
        assert!(same_digits(bg.p_alive(&s), p_alive, 4), "row {i} P(alive)");
        assert!(
            same_digits(bg.expected_purchases(&s, 90.0 / 7.0), orders, 4),
            "row {i} orders"
        );
        let got = gg.expected_order_value(s.frequency, m).expect("q > 1");
        assert!(same_digits(got, value, 4), "row {i} value {got}");
    }
}

#[test]
fn gradients_match_finite_differences() {
    let rows = cdnow();
    let data = Weighted::new(rows.iter().map(|(s, _)| {
        (
            s.frequency,
            (s.recency, s.t),
            [s.recency.to_bits(), s.t.to_bits()],
        )
    }));
    let theta = [-1.2, 1.3, -0.3, 0.8];
    let mut grad = [0.0; 4];
    bg_nbd_objective(&data, &theta, &mut grad);
    let mut scratch = [0.0; 4];
    for k in 0..4 {
        let h = 1e-6;
        let (mut up, mut down) = (theta, theta);
        up[k] += h;
        down[k] -= h;
        let numeric = (bg_nbd_objective(&data, &up, &mut scratch)
            - bg_nbd_objective(&data, &down, &mut scratch))
            / (2.0 * h);
        assert!(
            (numeric - grad[k]).abs() < 1e-6,
            "θ{k}: {numeric} vs {}",
            grad[k]
        );
    }
    // The objective is the mean of the per-customer log-likelihoods.
    let bg = BgNbd {
        r: theta[0].exp(),
        alpha: theta[1].exp(),
        a: theta[2].exp(),
        b: theta[3].exp(),
    };
    let direct: f64 =
        rows.iter().map(|(s, _)| bg.log_likelihood(s)).sum::<f64>() / rows.len() as f64;
    assert!((bg_nbd_objective(&data, &theta, &mut scratch) + direct).abs() < 1e-9);
}

#[test]
fn summaries_count_purchase_days_after_the_first() {
    let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date");
    let orders = [
        (d("2026-01-01"), 10_000),
        (d("2026-01-01"), 5_000),
        (d("2026-01-15"), 20_000),
        (d("2026-02-12"), 40_000),
        // After the as-of date: not seen.
        (d("2026-06-01"), 99_900),
    ];
    let (s, spend) = summarize(&orders, d("2026-03-12")).expect("has orders");
    assert_eq!(s.frequency, 2.0);
    assert_eq!(s.recency, 6.0);
    assert_eq!(s.t, 10.0);
    assert_eq!(spend, 30_000.0);
    let (first_day, spend) = summarize(&orders[..1], d("2026-01-01")).expect("one order");
    assert_eq!((first_day.frequency, first_day.recency), (0.0, 0.0));
    assert!(first_day.t > 0.0);
    assert_eq!(spend, 0.0);
    assert!(summarize(&orders[4..], d("2026-03-12")).is_none());
}

#[test]
fn lifetime_value_is_the_discounted_value_of_expected_orders() {
    let bg = BgNbd {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };
    let gg = GammaGamma {
        p: 6.25,
        q: 3.74,
        v: 1544.0,
    };
    let s = Summary::new(5.0, 24.43, 38.86).expect("valid");
    let flat = Horizon {
        order_days: 90,
        clv_months: 12,
        monthly_discount: 0.0,
    };
    let o = outlook(&bg, Some(&gg), &s, 2944.0, flat);
    let value = gg.expected_order_value(5.0, 2944.0).expect("q > 1");
    let undiscounted = bg.expected_purchases(&s, 360.0 / 7.0) * value;
    assert_eq!(o.clv_fen, Some(undiscounted.round() as i64));
    let discounted = outlook(&bg, Some(&gg), &s, 2944.0, DEFAULT_HORIZON);
    assert!(discounted.clv_fen < o.clv_fen && discounted.clv_fen > Some(0));
    assert_eq!(o.expected_order_value_fen, Some(value.round() as i64));
    // Without a spend model there is no value, but there are still orders.
    let no_value = outlook(&bg, None, &s, 2944.0, DEFAULT_HORIZON);
    assert_eq!(no_value.clv_fen, None);
    assert!(no_value.expected_orders > 0.0);
}

#[test]
fn bad_summaries_and_too_little_data_are_refused() {
    let cases = [
        ((1.5, 1.0, 2.0), SummaryProblem::Frequency),
        ((-1.0, 0.0, 2.0), SummaryProblem::Frequency),
        ((1.0, -1.0, 2.0), SummaryProblem::Recency),
        ((1.0, 3.0, 2.0), SummaryProblem::T),
        ((0.0, 0.0, 0.0), SummaryProblem::T),
        ((0.0, 1.0, 2.0), SummaryProblem::RecencyWithoutRepeat),
        ((f64::NAN, 1.0, 2.0), SummaryProblem::Frequency),
    ];
    for ((x, tx, t), problem) in cases {
        assert_eq!(Summary::new(x, tx, t), Err(problem), "{x} {tx} {t}");
    }
    let few = vec![Summary::new(1.0, 1.0, 2.0).expect("valid"); 3];
    assert_eq!(
        BgNbd::fit(&few),
        Err(FitError::TooFew {
            needed: MIN_REPEAT_BUYERS,
            got: 3
        })
    );
    assert!(FitError::TooFew { needed: 10, got: 3 }
        .message(Lang::Zh)
        .contains("至少需要 10"));
}

#[test]
fn one_sided_data_still_fits_with_a_light_ridge() {
    // Everyone drops out alike (a, b huge): the plain maximum lies at infinity.
    let alike = BgNbd {
        r: 1.0,
        alpha: 4.0,
        a: 20_000.0,
        b: 60_000.0,
    };
    let customers = simulate::bg_nbd_customers(&alike, 60, 52.0, 3);
    let fit = BgNbd::fit(&customers).expect("fits");
    assert!(fit.penalizer > 0.0, "{fit:?}");
    let p = fit.params;
    assert!([p.r, p.alpha, p.a, p.b]
        .iter()
        .all(|v| v.is_finite() && *v > 0.0));
    // Rich data needs no ridge (the CDNOW fit above is plain maximum likelihood too).
    let rich = simulate::bg_nbd_customers(
        &BgNbd {
            r: 0.5,
            alpha: 6.0,
            a: 0.7,
            b: 3.0,
        },
        5_000,
        104.0,
        9,
    );
    assert_eq!(BgNbd::fit(&rich).expect("fits").penalizer, 0.0);
}

#[test]
fn the_fitter_recovers_the_process_that_made_the_data() {
    let truth = BgNbd {
        r: 0.5,
        alpha: 6.0,
        a: 0.7,
        b: 3.0,
    };
    let customers = simulate::bg_nbd_customers(&truth, 40_000, 104.0, 7);
    let fit = BgNbd::fit(&customers).expect("fits").params;
    for (name, got, want, tolerance) in [
        ("r", fit.r, truth.r, 0.1),
        ("alpha", fit.alpha, truth.alpha, 0.1),
        ("a", fit.a, truth.a, 0.25),
        ("b", fit.b, truth.b, 0.3),
    ] {
        assert!(
            (got / want - 1.0).abs() < tolerance,
            "{name}: {got} vs {want}"
        );
    }
}
