//! Industries: a configurable list (stored by kehu-store), presets from
//! design.md, and a synonym table so that 工业 lands on 制造业.

use crate::error::Reason;
use crate::text::clean;

pub const PRESET_INDUSTRIES: &[&str] = &[
    "制造业",
    "服务业",
    "零售业",
    "IT服务",
    "金融",
    "医疗健康",
    "教育",
    "建筑地产",
    "能源化工",
    "物流运输",
    "快消",
    "政府公共",
    "其他",
];

/// (synonym, industry). Matched after cleanup, case-insensitively for ASCII.
pub const INDUSTRY_SYNONYMS: &[(&str, &str)] = &[
    ("工业", "制造业"),
    ("制造", "制造业"),
    ("生产制造", "制造业"),
    ("manufacturing", "制造业"),
    ("服务", "服务业"),
    ("services", "服务业"),
    ("零售", "零售业"),
    ("批发零售", "零售业"),
    ("retail", "零售业"),
    ("IT", "IT服务"),
    ("IT服务业", "IT服务"),
    ("信息技术", "IT服务"),
    ("软件", "IT服务"),
    ("互联网", "IT服务"),
    ("云计算", "IT服务"),
    ("金融业", "金融"),
    ("银行", "金融"),
    ("保险", "金融"),
    ("证券", "金融"),
    ("finance", "金融"),
    ("医疗", "医疗健康"),
    ("医药", "医疗健康"),
    ("healthcare", "医疗健康"),
    ("教育培训", "教育"),
    ("education", "教育"),
    ("房地产", "建筑地产"),
    ("建筑", "建筑地产"),
    ("化工", "能源化工"),
    ("能源", "能源化工"),
    ("物流", "物流运输"),
    ("运输", "物流运输"),
    ("快速消费品", "快消"),
    ("FMCG", "快消"),
];

/// Resolves `raw` to one of `allowed` (exact, then by synonym).
pub fn resolve_industry(raw: &str, allowed: &[String]) -> Result<String, Reason> {
    let s = clean(raw);
    if s.is_empty() {
        return Err(Reason::Required);
    }
    if let Some(hit) = allowed.iter().find(|a| a.eq_ignore_ascii_case(&s)) {
        return Ok(hit.clone());
    }
    if let Some((_, target)) = INDUSTRY_SYNONYMS
        .iter()
        .find(|(syn, _)| syn.eq_ignore_ascii_case(&s))
    {
        if let Some(hit) = allowed.iter().find(|a| a == target) {
            return Ok(hit.clone());
        }
    }
    Err(Reason::UnknownOption {
        allowed: allowed.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn industry_table() {
        let allowed: Vec<String> = PRESET_INDUSTRIES.iter().map(|s| s.to_string()).collect();
        let cases = [
            ("制造业", Ok("制造业")),
            (" 工业 ", Ok("制造业")),
            ("it服务业", Ok("IT服务")),
            ("ＩＴ", Ok("IT服务")),
            ("", Err(Reason::Required)),
        ];
        for (input, want) in cases {
            assert_eq!(
                resolve_industry(input, &allowed)
                    .as_deref()
                    .map_err(Clone::clone),
                want,
                "input {input:?}"
            );
        }
        assert!(matches!(
            resolve_industry("航天", &allowed),
            Err(Reason::UnknownOption { .. })
        ));
    }
}
