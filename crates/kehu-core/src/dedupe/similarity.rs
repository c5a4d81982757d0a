//! String similarities over character slices, without allocating for the
//! short values that fields hold (≤ 64 characters; longer ones fall back to
//! `strsim`). Candidate pairs are compared field by field millions of
//! times, so this is the matcher's inner loop.

const SHORT: usize = 64;

/// Jaro similarity, as defined by Jaro (1989) and implemented by `strsim`.
pub fn jaro(a: &[char], b: &[char]) -> f64 {
    if a.is_empty() && b.is_empty() {
        return 1.0;
    }
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    if a.len() > SHORT || b.len() > SHORT {
        let (x, y): (String, String) = (a.iter().collect(), b.iter().collect());
        return strsim::jaro(&x, &y);
    }
    let range = (a.len().max(b.len()) / 2).saturating_sub(1);
    let (mut a_flags, mut b_flags) = (0u64, 0u64);
    let mut matches = 0usize;
    for (i, ca) in a.iter().enumerate() {
        let lo = i.saturating_sub(range);
        let hi = (i + range + 1).min(b.len());
        for (j, cb) in b.iter().enumerate().take(hi).skip(lo) {
            if b_flags & (1 << j) == 0 && ca == cb {
                a_flags |= 1 << i;
                b_flags |= 1 << j;
                matches += 1;
                break;
            }
        }
    }
    if matches == 0 {
        return 0.0;
    }
    let mut transpositions = 0usize;
    let mut j = 0usize;
    for (i, ca) in a.iter().enumerate() {
        if a_flags & (1 << i) == 0 {
            continue;
        }
        while b_flags & (1 << j) == 0 {
            j += 1;
        }
        if *ca != b[j] {
            transpositions += 1;
        }
        j += 1;
    }
    let m = matches as f64;
    let t = (transpositions / 2) as f64;
    (m / a.len() as f64 + m / b.len() as f64 + (m - t) / m) / 3.0
}

/// Jaro–Winkler: a Jaro above 0.7 raised for a common prefix of up to four characters.
pub fn jaro_winkler(a: &[char], b: &[char]) -> f64 {
    let j = jaro(a, b);
    if j <= 0.7 {
        return j;
    }
    let prefix = a.iter().zip(b).take(4).take_while(|(x, y)| x == y).count();
    j + 0.1 * prefix as f64 * (1.0 - j)
}

/// Optimal string alignment distance: edits and adjacent transpositions.
pub fn osa_distance(a: &[char], b: &[char]) -> usize {
    if a.len() > SHORT || b.len() > SHORT {
        let (x, y): (String, String) = (a.iter().collect(), b.iter().collect());
        return strsim::osa_distance(&x, &y);
    }
    // Three rows (before last, last, current) that take turns.
    let mut rows = [[0usize; SHORT + 1]; 3];
    for (j, cell) in rows[1].iter_mut().enumerate().take(b.len() + 1) {
        *cell = j;
    }
    let (mut two_ago, mut prev, mut curr) = (0usize, 1usize, 2usize);
    for i in 1..=a.len() {
        rows[curr][0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (rows[prev][j] + 1)
                .min(rows[curr][j - 1] + 1)
                .min(rows[prev][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(rows[two_ago][j - 2] + 1);
            }
            rows[curr][j] = d;
        }
        (two_ago, prev, curr) = (prev, curr, two_ago);
    }
    rows[prev][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn known_values() {
        let cases = [
            ("martha", "marhta", 0.9611),
            ("dwayne", "duane", 0.84),
            ("dixon", "dicksonx", 0.8133),
            ("字节跳动", "字节挑动", 0.8667),
        ];
        for (a, b, want) in cases {
            let got = jaro_winkler(&chars(a), &chars(b));
            assert!((got - want).abs() < 1e-3, "{a} {b}: {got}");
        }
        assert_eq!(osa_distance(&chars("ca"), &chars("ac")), 1);
        assert_eq!(osa_distance(&chars("19081209"), &chars("19081290")), 1);
        assert_eq!(osa_distance(&chars(""), &chars("abc")), 3);
    }

    proptest! {
        /// The same numbers as strsim, for short and long strings alike.
        #[test]
        fn agrees_with_strsim(a in "[a-d字节]{0,70}", b in "[a-d字节]{0,70}") {
            let (x, y) = (chars(&a), chars(&b));
            prop_assert!((jaro(&x, &y) - strsim::jaro(&a, &b)).abs() < 1e-12);
            prop_assert!((jaro_winkler(&x, &y) - strsim::jaro_winkler(&a, &b)).abs() < 1e-12);
            prop_assert_eq!(osa_distance(&x, &y), strsim::osa_distance(&a, &b));
        }
    }
}
