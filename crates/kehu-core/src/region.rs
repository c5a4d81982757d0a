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

/// (city, province) for the cities that start addresses and company names
/// as often as provinces do: prefecture level and above, the larger ones.
#[rustfmt::skip]
pub const CITIES: &[(&str, &str)] = &[
    ("哈尔滨", "黑龙江"), ("大庆", "黑龙江"), ("石家庄", "河北"), ("唐山", "河北"), ("保定", "河北"),
    ("廊坊", "河北"), ("乌鲁木齐", "新疆"), ("呼和浩特", "内蒙古"), ("包头", "内蒙古"),
    ("杭州", "浙江"), ("宁波", "浙江"), ("温州", "浙江"), ("嘉兴", "浙江"), ("湖州", "浙江"),
    ("绍兴", "浙江"), ("金华", "浙江"), ("台州", "浙江"), ("义乌", "浙江"), ("南京", "江苏"),
    ("苏州", "江苏"), ("无锡", "江苏"), ("常州", "江苏"), ("南通", "江苏"), ("扬州", "江苏"),
    ("徐州", "江苏"), ("昆山", "江苏"), ("合肥", "安徽"), ("芜湖", "安徽"), ("福州", "福建"),
    ("厦门", "福建"), ("泉州", "福建"), ("南昌", "江西"), ("济南", "山东"), ("青岛", "山东"),
    ("烟台", "山东"), ("潍坊", "山东"), ("广州", "广东"), ("深圳", "广东"), ("珠海", "广东"),
    ("佛山", "广东"), ("东莞", "广东"), ("中山", "广东"), ("惠州", "广东"), ("汕头", "广东"),
    ("南宁", "广西"), ("柳州", "广西"), ("桂林", "广西"), ("海口", "海南"), ("三亚", "海南"),
    ("郑州", "河南"), ("洛阳", "河南"), ("武汉", "湖北"), ("宜昌", "湖北"), ("长沙", "湖南"),
    ("株洲", "湖南"), ("成都", "四川"), ("绵阳", "四川"), ("贵阳", "贵州"), ("昆明", "云南"),
    ("拉萨", "西藏"), ("西安", "陕西"), ("兰州", "甘肃"), ("西宁", "青海"), ("银川", "宁夏"),
    ("沈阳", "辽宁"), ("大连", "辽宁"), ("长春", "吉林"), ("太原", "山西"), ("大同", "山西"),
];

pub const SALES_REGIONS: &[&str] = &["华东", "华南", "华北", "华中", "西南", "西北", "东北"];

/// The short province name at the start of `text` (an address or a province name).
pub fn province_of(text: &str) -> Option<&'static str> {
    let t = text.trim();
    PROVINCES.iter().map(|(p, _)| *p).find(|p| t.starts_with(p))
}

/// The province of an address: named at its start, or the province of the
/// city it starts with (杭州市西湖区… → 浙江).
pub fn province_of_address(address: &str) -> Option<&'static str> {
    let t = address.trim();
    province_of(t).or_else(|| {
        CITIES
            .iter()
            .find(|(city, _)| t.starts_with(city))
            .map(|(_, province)| *province)
    })
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

    #[test]
    fn addresses_to_provinces() {
        let cases = [
            ("浙江省杭州市西湖区文三路 90 号", Some("浙江")),
            ("杭州市西湖区文三路 90 号", Some("浙江")),
            ("深圳市南山区科技园", Some("广东")),
            (" 北京市朝阳区", Some("北京")),
            ("西湖区文三路", None),
        ];
        for (input, want) in cases {
            assert_eq!(province_of_address(input), want, "input {input:?}");
        }
        for (_, province) in CITIES {
            assert!(
                sales_region_of_province(province).is_some(),
                "{province} is a province"
            );
        }
    }
}
