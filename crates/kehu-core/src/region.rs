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

/// Area codes of the direct-controlled municipalities and provincial
/// capitals that have three digits (010 北京, 020 广州, …).
const AREA_CODES_3: &[(&str, &str)] = &[
    ("010", "北京"),
    ("020", "广东"),
    ("021", "上海"),
    ("022", "天津"),
    ("023", "重庆"),
    ("024", "辽宁"),
    ("025", "江苏"),
    ("027", "湖北"),
    ("028", "四川"),
    ("029", "陕西"),
];

/// Four-digit area codes by their first three digits (0571 杭州 → 057 浙江),
/// as the national numbering plan groups them by province.
const AREA_CODE_PREFIXES: &[(&str, &str)] = &[
    ("031", "河北"),
    ("032", "河北"),
    ("033", "河北"),
    ("034", "山西"),
    ("035", "山西"),
    ("037", "河南"),
    ("038", "河南"),
    ("039", "河南"),
    ("041", "辽宁"),
    ("042", "辽宁"),
    ("043", "吉林"),
    ("044", "吉林"),
    ("045", "黑龙江"),
    ("046", "黑龙江"),
    ("047", "内蒙古"),
    ("048", "内蒙古"),
    ("051", "江苏"),
    ("052", "江苏"),
    ("053", "山东"),
    ("054", "山东"),
    ("063", "山东"),
    ("055", "安徽"),
    ("056", "安徽"),
    ("057", "浙江"),
    ("058", "浙江"),
    ("059", "福建"),
    ("066", "广东"),
    ("075", "广东"),
    ("076", "广东"),
    ("069", "云南"),
    ("087", "云南"),
    ("088", "云南"),
    ("070", "江西"),
    ("079", "江西"),
    ("071", "湖北"),
    ("072", "湖北"),
    ("073", "湖南"),
    ("074", "湖南"),
    ("077", "广西"),
    ("081", "四川"),
    ("082", "四川"),
    ("083", "四川"),
    ("085", "贵州"),
    ("086", "贵州"),
    ("089", "西藏"),
    ("091", "陕西"),
    ("093", "甘肃"),
    ("094", "甘肃"),
    ("095", "宁夏"),
    ("097", "青海"),
    ("090", "新疆"),
    ("099", "新疆"),
];

/// The province of a landline's area code ("0571-88886666" → 浙江), if
/// the number carries one we know. 0898 is 海南, not 西藏.
pub fn province_of_area_code(landline: &str) -> Option<&'static str> {
    let digits: String = landline
        .trim()
        .trim_start_matches("+86")
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ' ' || *c == '(' || *c == ')')
        .filter(char::is_ascii_digit)
        .collect();
    let digits = if landline.trim().starts_with("+86") || landline.trim().starts_with("86-") {
        format!("0{digits}")
    } else {
        digits
    };
    if !digits.starts_with('0') || digits.len() < 3 {
        return None;
    }
    if digits.starts_with("0898") {
        return Some("海南");
    }
    let find = |table: &[(&str, &'static str)]| {
        table
            .iter()
            .find(|(code, _)| digits.starts_with(code))
            .map(|(_, p)| *p)
    };
    find(AREA_CODES_3).or_else(|| find(AREA_CODE_PREFIXES))
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
    fn area_codes_to_provinces() {
        let cases = [
            ("010-62881234", Some("北京")),
            ("021-5888 6666", Some("上海")),
            ("0571-88886666", Some("浙江")),
            ("0512-62881234", Some("江苏")),
            ("0755-26661234", Some("广东")),
            ("0898-66661234", Some("海南")),
            ("0891-6661234", Some("西藏")),
            ("0991-1234567", Some("新疆")),
            ("(0531)88886666", Some("山东")),
            ("+86 10 62881234", Some("北京")),
            ("400-820-8820", None),
            ("13800138000", None),
            ("", None),
        ];
        for (phone, want) in cases {
            assert_eq!(province_of_area_code(phone), want, "{phone}");
        }
    }

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
