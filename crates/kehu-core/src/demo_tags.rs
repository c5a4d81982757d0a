//! Demo tags: extra tags beside the preset catalogue (about a hundred in
//! all) and which customers carry them, deterministically from the seed,
//! with the skew of a real base — the commonest tag on about 30 % of
//! customers, most on well under 1 % — and never more hand tags on one
//! customer than the per-customer limit.

use crate::tags::DEFAULT_MAX_MANUAL_TAGS;

/// Paths of the demo's tags (parents first); with the preset catalogue
/// about a hundred tags.
pub const DEMO_TAG_PATHS: &[&str] = &[
    "营销标签",
    "营销标签/渠道来源",
    "营销标签/渠道来源/展会",
    "营销标签/渠道来源/官网",
    "营销标签/渠道来源/转介绍",
    "营销标签/渠道来源/电话营销",
    "营销标签/渠道来源/招投标",
    "营销标签/活动响应",
    "营销标签/活动响应/新品发布会",
    "营销标签/活动响应/客户答谢会",
    "营销标签/活动响应/直播",
    "营销标签/活动响应/问卷",
    "营销标签/内容偏好",
    "营销标签/内容偏好/案例",
    "营销标签/内容偏好/白皮书",
    "营销标签/内容偏好/产品手册",
    "服务标签",
    "服务标签/服务偏好",
    "服务标签/服务偏好/上门服务",
    "服务标签/服务偏好/远程支持",
    "服务标签/服务偏好/驻场",
    "服务标签/沟通偏好",
    "服务标签/沟通偏好/微信",
    "服务标签/沟通偏好/电话",
    "服务标签/沟通偏好/邮件",
    "服务标签/沟通偏好/面谈",
    "服务标签/付款方式",
    "服务标签/付款方式/月结",
    "服务标签/付款方式/预付",
    "服务标签/付款方式/承兑汇票",
    "需求标签/年度框架协议",
    "需求标签/多地交付",
    "需求标签/国产替代",
    "需求标签/出口业务",
    "需求标签/数字化转型",
    "需求标签/节能降耗",
    "需求标签/备件储备",
    "风险标签/资金紧张",
    "风险标签/股权变更",
    "风险标签/诉讼记录",
    "风险标签/关键人离职",
    "基础标签/企业性质/港澳台企业",
    "基础标签/企业性质/专精特新",
    "基础标签/企业性质/高新技术企业",
    "基础标签/细分行业/制造业/注塑成型",
    "基础标签/细分行业/制造业/精密加工",
    "基础标签/细分行业/制造业/新能源",
    "基础标签/细分行业/IT服务业/数据服务",
    "基础标签/细分行业/IT服务业/信息安全",
    "行为标签/活动参与/培训",
    "行为标签/活动参与/工厂参观",
    "行为标签/决策特点",
    "行为标签/决策特点/集中采购",
    "行为标签/决策特点/分散采购",
    "行为标签/决策特点/比价严格",
    "行为标签/决策特点/快速决策",
    "行为标签/决策特点/流程长",
];

/// splitmix64: a well-mixed 64-bit hash of one number.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Which of `tags` (hand tags, commonest first) customer `id` carries: tag
/// k with probability 0.3 / (k + 1)^0.9, at most the per-customer limit.
pub fn demo_tags_of(seed: u64, customer_id: i64, tags: &[i64]) -> Vec<i64> {
    let mut out = Vec::new();
    for (k, &tag) in tags.iter().enumerate() {
        let p = 0.3 / ((k + 1) as f64).powf(0.9);
        let h =
            mix(seed ^ mix(customer_id as u64) ^ (k as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        // The top 53 bits as a uniform number in [0, 1).
        if ((h >> 11) as f64) / ((1u64 << 53) as f64) < p {
            out.push(tag);
            if out.len() == DEFAULT_MAX_MANUAL_TAGS as usize {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skewed_deterministic_and_within_the_limit() {
        let tags: Vec<i64> = (100..180).collect();
        let mut counts = vec![0u32; tags.len()];
        let n = 20_000;
        for id in 1..=n {
            let got = demo_tags_of(42, id, &tags);
            assert_eq!(got, demo_tags_of(42, id, &tags), "same seed, same tags");
            assert!(got.len() <= 5);
            for t in got {
                counts[(t - 100) as usize] += 1;
            }
        }
        let share = |k: usize| f64::from(counts[k]) / n as f64;
        assert!((0.27..0.33).contains(&share(0)), "{}", share(0));
        assert!(share(79) < 0.01, "{}", share(79));
        assert!(
            (1..200).any(|id| demo_tags_of(42, id, &tags) != demo_tags_of(43, id, &tags)),
            "the seed matters"
        );
    }
}
