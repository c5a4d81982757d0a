//! The demo's marketing campaigns: one or two per channel over the last
//! year, each touching a deterministic share of the customers on a day
//! within its dates.

use crate::campaign::CampaignInput;
use crate::demo_tags::mix;
use chrono::NaiveDate;

/// (name, channel, first day's distance before today, days it ran, cost in 元, share touched).
pub const DEMO_CAMPAIGNS: &[(&str, &str, u64, u64, &str, f64)] = &[
    ("春季新品发布会", "event", 250, 3, "18万", 0.03),
    ("行业展会（上海）", "event", 120, 4, "35万", 0.05),
    ("电话回访计划", "traditional", 200, 30, "6万", 0.10),
    ("季度产品手册邮寄", "traditional", 90, 14, "2.5万", 0.08),
    ("公众号推文", "online", 150, 7, "8000", 0.15),
    ("线上研讨会", "online", 60, 2, "3万", 0.04),
];

/// The campaign as input, dated back from `today`.
pub fn demo_campaign(today: NaiveDate, k: usize) -> Option<CampaignInput> {
    let &(name, channel, back, days, cost, _) = DEMO_CAMPAIGNS.get(k)?;
    let start = today - chrono::Days::new(back);
    Some(CampaignInput {
        name: Some(name.into()),
        channel: Some(channel.into()),
        starts_on: Some(start.to_string()),
        ends_on: Some((start + chrono::Days::new(days - 1)).to_string()),
        cost: Some(cost.into()),
        window_days: Some(90),
        description: Some("演示数据 / demo data".into()),
    })
}

/// Whether campaign `k` touched the customer, and the day offset (from its
/// start) it did.
pub fn demo_touch(seed: u64, k: usize, customer_id: i64) -> Option<u64> {
    let &(_, _, _, days, _, share) = DEMO_CAMPAIGNS.get(k)?;
    let h = mix(seed
        ^ mix(customer_id as u64 ^ 0x5EED_CA4D)
        ^ (k as u64 + 1).wrapping_mul(0x9E37_79B9));
    // The top 53 bits as a uniform number in [0, 1).
    let u = ((h >> 11) as f64) / ((1u64 << 53) as f64);
    (u < share).then(|| h % days)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn campaigns_are_valid_and_touches_deterministic() {
        let today: NaiveDate = "2026-12-02".parse().expect("date");
        for k in 0..DEMO_CAMPAIGNS.len() {
            let c = demo_campaign(today, k)
                .expect("campaign")
                .validate()
                .expect("valid");
            assert!(c.ends_on < today);
            let touched = (1..=20_000)
                .filter(|&id| demo_touch(7, k, id).is_some())
                .count();
            let share = DEMO_CAMPAIGNS[k].5;
            assert!(
                (touched as f64 / 20_000.0 - share).abs() < 0.01,
                "{k}: {touched}"
            );
            for id in 1..200 {
                assert_eq!(demo_touch(7, k, id), demo_touch(7, k, id));
                if let Some(d) = demo_touch(7, k, id) {
                    assert!(d < DEMO_CAMPAIGNS[k].3);
                }
            }
        }
        assert!(demo_campaign(today, DEMO_CAMPAIGNS.len()).is_none());
    }
}
