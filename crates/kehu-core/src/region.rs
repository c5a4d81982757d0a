//! Provinces and the sales regions (华东/华南/…) they belong to.

/// (province, sales region). Short names as people write them; full names
/// such as 浙江省 / 上海市 / 广西壮族自治区 are matched by prefix.
pub const PROVINCES: &[(&str, &str)] = &[
    ("北京", "华北"),
    ("天津", "华北"),
    ("河北", "华北"),
    ("山西", "华北"),
    ("内蒙古", "华北"),
    ("上海", "华东"),
    ("江苏", "华东"),
    ("浙江", "华东"),
    ("安徽", "华东"),
    ("福建", "华东"),
    ("江西", "华东"),
    ("山东", "华东"),
    ("广东", "华南"),
    ("广西", "华南"),
    ("海南", "华南"),
    ("香港", "华南"),
    ("澳门", "华南"),
    ("河南", "华中"),
    ("湖北", "华中"),
    ("湖南", "华中"),
    ("重庆", "西南"),
    ("四川", "西南"),
    ("贵州", "西南"),
    ("云南", "西南"),
    ("西藏", "西南"),
    ("陕西", "西北"),
    ("甘肃", "西北"),
    ("青海", "西北"),
    ("宁夏", "西北"),
    ("新疆", "西北"),
    ("辽宁", "东北"),
    ("吉林", "东北"),
    ("黑龙江", "东北"),
    ("台湾", "华东"),
];

pub const SALES_REGIONS: &[&str] = &["华东", "华南", "华北", "华中", "西南", "西北", "东北"];

/// The short province name at the start of `text` (an address or a province name).
pub fn province_of(text: &str) -> Option<&'static str> {
    let t = text.trim();
    PROVINCES.iter().map(|(p, _)| *p).find(|p| t.starts_with(p))
}

pub fn sales_region_of_province(province: &str) -> Option<&'static str> {
    let p = province_of(province)?;
    PROVINCES
        .iter()
        .find(|(name, _)| *name == p)
        .map(|(_, r)| *r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provinces_to_regions() {
        let cases = [
            ("浙江省", Some("华东")),
            ("上海市浦东新区张江路 1 号", Some("华东")),
            ("广西壮族自治区", Some("华南")),
            ("黑龙江省哈尔滨市", Some("东北")),
            ("火星", None),
        ];
        for (input, want) in cases {
            assert_eq!(sales_region_of_province(input), want, "input {input:?}");
        }
    }
}
