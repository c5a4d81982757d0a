//! Deterministic demo data: realistic Chinese B2B customers with contacts,
//! three years of orders and interactions, generated from a seed.
//!
//! The generator streams: [`DemoGenerator`] yields one [`DemoCustomer`] at a
//! time (or chunks of them), so a million customers never sit in memory at
//! once. The first two customers are always design.md's examples C2024001
//! and C2024002, exactly as the templates define them (as of 2024-03-12).
//! Money is integer fen throughout; amounts are drawn as integers.

use crate::contact::ContactData;
use crate::customer::{CustomerData, CustomerStatus};
use crate::interaction::{InteractionData, InteractionKind, Severity, TicketStatus};
use crate::money::{Fen, MAX_FEN};
use crate::order::OrderData;
use crate::region::sales_region_of_province;
use chrono::{Datelike, Duration, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Map;
use std::collections::{BTreeMap, HashSet};

/// The date design.md's examples are stated "as of".
/// A hand-written interaction of the examples: date, kind, summary, severity, status, satisfaction.
type FixedInteraction = (
    NaiveDate,
    InteractionKind,
    &'static str,
    Option<Severity>,
    Option<TicketStatus>,
    Option<i64>,
);

pub const EXAMPLE_DATE: NaiveDate = ymd(2024, 3, 12);

const fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(y, m, d) {
        Some(d) => d,
        None => panic!("invalid date constant"),
    }
}

/// A sales rep customers are assigned to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOwner {
    pub user_id: i64,
    pub team: Option<String>,
}

/// What to generate. The same config (seed, today, owners, taken values)
/// always yields the same customers.
#[derive(Debug, Clone)]
pub struct DemoConfig {
    pub seed: u64,
    /// "Today": orders cover the three years before it; rollups are as of it.
    /// Should be on or after [`EXAMPLE_DATE`] (records dated after it are dropped).
    pub today: NaiveDate,
    /// How many customers in all, the two design.md examples included.
    pub customers: u64,
    /// Owners, assigned round-robin (within the customer's sales region when
    /// a team name starts with it, e.g. 华东一组 for 华东).
    pub owners: Vec<DemoOwner>,
    /// Who logs service records and complaints.
    pub service_user: Option<i64>,
    /// Highest number already used per code year (`C{year}{n}`), so appended
    /// demo codes never collide with existing ones; see [`code_floors`].
    pub code_floors: BTreeMap<i32, u64>,
    /// USCCs already in the database: a demo customer that would get one goes without.
    pub taken_usccs: HashSet<String>,
}

impl DemoConfig {
    pub fn new(seed: u64, today: NaiveDate, customers: u64) -> DemoConfig {
        DemoConfig {
            seed,
            today,
            customers,
            owners: Vec::new(),
            service_user: None,
            code_floors: BTreeMap::new(),
            taken_usccs: HashSet::new(),
        }
    }
}

/// The highest `n` per year among codes of the form `C{yyyy}{n}`.
pub fn code_floors<'a>(codes: impl IntoIterator<Item = &'a str>) -> BTreeMap<i32, u64> {
    let mut out = BTreeMap::new();
    for code in codes {
        let Some(rest) = code.strip_prefix('C') else {
            continue;
        };
        if rest.len() < 5 || !rest.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let (Ok(year), Ok(n)) = (rest[..4].parse::<i32>(), rest[4..].parse::<u64>()) else {
            continue;
        };
        let e = out.entry(year).or_insert(0);
        *e = (*e).max(n);
    }
    out
}

/// An interaction and who logged it.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoInteraction {
    pub data: InteractionData,
    pub user_id: Option<i64>,
}

/// One customer with everything hanging off it. `data.code` is always set.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoCustomer {
    pub data: CustomerData,
    pub team: Option<String>,
    /// The first one is the primary contact.
    pub contacts: Vec<ContactData>,
    /// In date order.
    pub orders: Vec<OrderData>,
    /// In date order.
    pub interactions: Vec<DemoInteraction>,
}

impl DemoCustomer {
    pub fn code(&self) -> &str {
        self.data.code.as_deref().unwrap_or("")
    }

    /// What classification knows of this customer, stored under `customer_id`.
    pub fn facts(&self, customer_id: i64) -> crate::classify::Facts {
        crate::classify::Facts::from_data(
            customer_id,
            &self.data,
            self.team.clone(),
            &self.orders,
            self.interactions.iter().map(|i| &i.data),
        )
    }
}

// ---------------------------------------------------------------- tables

/// (industry, weight): manufacturing-heavy, as B2B customer bases in China are.
const INDUSTRY_WEIGHTS: &[(&str, u32)] = &[
    ("制造业", 300),
    ("服务业", 110),
    ("零售业", 100),
    ("IT服务", 100),
    ("金融", 35),
    ("医疗健康", 50),
    ("教育", 35),
    ("建筑地产", 60),
    ("能源化工", 50),
    ("物流运输", 60),
    ("快消", 70),
    ("政府公共", 15),
    ("其他", 15),
];

/// Words that say what a company does, per industry (part of its name).
fn industry_words(industry: &str) -> &'static [&'static str] {
    match industry {
        "制造业" => &[
            "精密机械",
            "机械制造",
            "电子科技",
            "电气设备",
            "汽车零部件",
            "新材料",
            "模具",
            "轴承",
            "智能装备",
            "五金制品",
            "塑胶制品",
            "自动化设备",
            "精工",
            "机电",
        ],
        "服务业" => &[
            "企业管理咨询",
            "人力资源服务",
            "会展服务",
            "商务服务",
            "物业管理",
            "广告传媒",
            "检测技术",
            "餐饮管理",
        ],
        "零售业" => &[
            "商贸",
            "连锁超市",
            "百货",
            "电子商务",
            "贸易",
            "商业连锁",
            "便利店",
        ],
        "IT服务" => &[
            "信息技术",
            "软件",
            "网络科技",
            "数据科技",
            "云计算",
            "系统集成",
            "智能科技",
            "信息系统",
        ],
        "金融" => &[
            "融资租赁",
            "商业保理",
            "投资管理",
            "小额贷款",
            "保险代理",
            "资产管理",
        ],
        "医疗健康" => &[
            "医疗器械",
            "生物医药",
            "医药",
            "健康管理",
            "药业",
            "制药",
            "医疗科技",
        ],
        "教育" => &["教育科技", "职业培训", "教育咨询", "文化传播", "培训学校"],
        "建筑地产" => &["建设工程", "建筑装饰", "房地产开发", "建材", "工程", "置业"],
        "能源化工" => &["化工", "新能源", "能源", "石化", "燃气", "涂料", "光伏科技"],
        "物流运输" => &["物流", "供应链管理", "国际货运代理", "运输", "仓储", "快运"],
        "快消" => &["食品", "饮料", "日化", "乳业", "酒业", "调味品"],
        "政府公共" => &["城市建设投资", "公用事业", "水务", "城市发展", "公交"],
        _ => &["实业", "发展", "农业科技", "文化发展"],
    }
}

/// What the demo seller sells (an MRO and industrial supplier): the product
/// lines of orders and the customers' 核心产品类型.
pub const PRODUCT_LINES: &[&str] = &[
    "精密轴承",
    "传动部件",
    "电气元件",
    "工业耗材",
    "五金工具",
    "劳保用品",
    "仓储搬运设备",
    "清洁用品",
    "办公用品",
    "设备维保服务",
    "技术培训",
    "定制开发",
];

/// Which product lines an industry tends to buy.
fn preferred_lines(industry: &str) -> &'static [&'static str] {
    match industry {
        "制造业" => &[
            "精密轴承",
            "传动部件",
            "电气元件",
            "工业耗材",
            "五金工具",
            "劳保用品",
            "设备维保服务",
        ],
        "服务业" => &["办公用品", "清洁用品", "劳保用品", "技术培训"],
        "零售业" => &["仓储搬运设备", "清洁用品", "办公用品", "劳保用品"],
        "IT服务" => &["办公用品", "电气元件", "定制开发", "技术培训"],
        "金融" => &["办公用品", "清洁用品", "定制开发"],
        "医疗健康" => &["清洁用品", "劳保用品", "办公用品", "设备维保服务"],
        "教育" => &["办公用品", "清洁用品", "技术培训"],
        "建筑地产" => &["五金工具", "劳保用品", "电气元件", "工业耗材"],
        "能源化工" => &[
            "劳保用品",
            "工业耗材",
            "传动部件",
            "设备维保服务",
            "电气元件",
        ],
        "物流运输" => &["仓储搬运设备", "劳保用品", "五金工具", "设备维保服务"],
        "快消" => &["清洁用品", "仓储搬运设备", "劳保用品", "工业耗材"],
        "政府公共" => &["办公用品", "清洁用品", "劳保用品"],
        _ => &["办公用品", "五金工具", "工业耗材"],
    }
}

/// A city: (province as in region::PROVINCES, city, area code, first four
/// digits of its administrative division code, weight).
struct City {
    province: &'static str,
    name: &'static str,
    area: &'static str,
    division: &'static str,
    weight: u32,
}

macro_rules! cities {
    ($(($p:literal, $n:literal, $a:literal, $d:literal, $w:literal)),* $(,)?) => {
        &[$(City { province: $p, name: $n, area: $a, division: $d, weight: $w }),*]
    };
}

const CITIES: &[City] = cities![
    ("北京", "北京", "010", "1101", 60),
    ("天津", "天津", "022", "1201", 18),
    ("河北", "石家庄", "0311", "1301", 8),
    ("河北", "唐山", "0315", "1302", 5),
    ("河北", "保定", "0312", "1306", 4),
    ("河北", "廊坊", "0316", "1310", 3),
    ("山西", "太原", "0351", "1401", 5),
    ("内蒙古", "呼和浩特", "0471", "1501", 3),
    ("内蒙古", "包头", "0472", "1502", 2),
    ("上海", "上海", "021", "3101", 70),
    ("江苏", "南京", "025", "3201", 22),
    ("江苏", "苏州", "0512", "3205", 35),
    ("江苏", "无锡", "0510", "3202", 18),
    ("江苏", "常州", "0519", "3204", 12),
    ("江苏", "南通", "0513", "3206", 10),
    ("江苏", "徐州", "0516", "3203", 7),
    ("浙江", "杭州", "0571", "3301", 30),
    ("浙江", "宁波", "0574", "3302", 18),
    ("浙江", "温州", "0577", "3303", 12),
    ("浙江", "绍兴", "0575", "3306", 8),
    ("浙江", "嘉兴", "0573", "3304", 7),
    ("浙江", "金华", "0579", "3307", 8),
    ("浙江", "台州", "0576", "3310", 7),
    ("安徽", "合肥", "0551", "3401", 12),
    ("安徽", "芜湖", "0553", "3402", 4),
    ("福建", "福州", "0591", "3501", 10),
    ("福建", "厦门", "0592", "3502", 10),
    ("福建", "泉州", "0595", "3505", 9),
    ("江西", "南昌", "0791", "3601", 7),
    ("山东", "济南", "0531", "3701", 14),
    ("山东", "青岛", "0532", "3702", 16),
    ("山东", "烟台", "0535", "3706", 6),
    ("山东", "潍坊", "0536", "3707", 6),
    ("广东", "广州", "020", "4401", 45),
    ("广东", "深圳", "0755", "4403", 50),
    ("广东", "东莞", "0769", "4419", 20),
    ("广东", "佛山", "0757", "4406", 18),
    ("广东", "珠海", "0756", "4404", 5),
    ("广东", "中山", "0760", "4420", 6),
    ("广东", "惠州", "0752", "4413", 5),
    ("广西", "南宁", "0771", "4501", 6),
    ("广西", "柳州", "0772", "4502", 3),
    ("海南", "海口", "0898", "4601", 3),
    ("河南", "郑州", "0371", "4101", 16),
    ("河南", "洛阳", "0379", "4103", 4),
    ("湖北", "武汉", "027", "4201", 22),
    ("湖北", "宜昌", "0717", "4205", 3),
    ("湖北", "襄阳", "0710", "4206", 3),
    ("湖南", "长沙", "0731", "4301", 16),
    ("重庆", "重庆", "023", "5001", 18),
    ("四川", "成都", "028", "5101", 26),
    ("四川", "绵阳", "0816", "5107", 3),
    ("贵州", "贵阳", "0851", "5201", 5),
    ("云南", "昆明", "0871", "5301", 6),
    ("西藏", "拉萨", "0891", "5401", 1),
    ("陕西", "西安", "029", "6101", 16),
    ("甘肃", "兰州", "0931", "6201", 3),
    ("青海", "西宁", "0971", "6301", 1),
    ("宁夏", "银川", "0951", "6401", 1),
    ("新疆", "乌鲁木齐", "0991", "6501", 3),
    ("辽宁", "沈阳", "024", "2101", 10),
    ("辽宁", "大连", "0411", "2102", 10),
    ("吉林", "长春", "0431", "2201", 6),
    ("黑龙江", "哈尔滨", "0451", "2301", 6),
];

const MUNICIPALITIES: &[&str] = &["北京", "天津", "上海", "重庆"];

fn province_full(p: &str) -> String {
    match p {
        "内蒙古" => "内蒙古自治区".into(),
        "广西" => "广西壮族自治区".into(),
        "西藏" => "西藏自治区".into(),
        "宁夏" => "宁夏回族自治区".into(),
        "新疆" => "新疆维吾尔自治区".into(),
        p if MUNICIPALITIES.contains(&p) => format!("{p}市"),
        p => format!("{p}省"),
    }
}

fn districts(city: &str) -> &'static [&'static str] {
    match city {
        "北京" => &["朝阳区", "海淀区", "丰台区", "大兴区", "顺义区"],
        "天津" => &["滨海新区", "西青区", "河西区", "东丽区"],
        "上海" => &["浦东新区", "闵行区", "嘉定区", "松江区", "徐汇区", "青浦区"],
        "重庆" => &["渝北区", "九龙坡区", "江北区", "沙坪坝区"],
        _ => &["高新区", "经济技术开发区", "工业园区", "新区"],
    }
}

const ROADS: &[&str] = &[
    "长江路",
    "人民路",
    "解放路",
    "建设路",
    "中山路",
    "科技路",
    "创业大道",
    "工业大道",
    "新华路",
    "和平路",
    "学府路",
    "滨江大道",
    "星湖街",
    "金桥路",
    "科苑路",
    "振兴路",
    "黄河路",
    "发展大道",
];

/// Characters for two-character brand names, with their pinyin (for e-mail domains).
const BRAND_CHARS: &[(&str, &str)] = &[
    ("华", "hua"),
    ("恒", "heng"),
    ("达", "da"),
    ("锐", "rui"),
    ("鑫", "xin"),
    ("泰", "tai"),
    ("盛", "sheng"),
    ("宏", "hong"),
    ("远", "yuan"),
    ("航", "hang"),
    ("新", "xin"),
    ("创", "chuang"),
    ("德", "de"),
    ("信", "xin"),
    ("安", "an"),
    ("康", "kang"),
    ("利", "li"),
    ("通", "tong"),
    ("博", "bo"),
    ("海", "hai"),
    ("天", "tian"),
    ("中", "zhong"),
    ("金", "jin"),
    ("瑞", "rui"),
    ("嘉", "jia"),
    ("永", "yong"),
    ("隆", "long"),
    ("昌", "chang"),
    ("丰", "feng"),
    ("源", "yuan"),
    ("明", "ming"),
    ("光", "guang"),
    ("正", "zheng"),
    ("诚", "cheng"),
    ("和", "he"),
    ("润", "run"),
    ("辰", "chen"),
    ("卓", "zhuo"),
    ("越", "yue"),
    ("迅", "xun"),
    ("捷", "jie"),
    ("力", "li"),
    ("宇", "yu"),
    ("凯", "kai"),
    ("汇", "hui"),
    ("联", "lian"),
    ("合", "he"),
    ("兴", "xing"),
    ("旺", "wang"),
    ("腾", "teng"),
    ("飞", "fei"),
    ("龙", "long"),
    ("峰", "feng"),
    ("晟", "sheng"),
    ("弘", "hong"),
    ("致", "zhi"),
    ("科", "ke"),
    ("伟", "wei"),
    ("立", "li"),
    ("东", "dong"),
    ("方", "fang"),
    ("大", "da"),
    ("益", "yi"),
    ("万", "wan"),
    ("佳", "jia"),
    ("优", "you"),
    ("品", "pin"),
    ("驰", "chi"),
    ("亿", "yi"),
    ("星", "xing"),
    ("聚", "ju"),
    ("铭", "ming"),
    ("维", "wei"),
    ("美", "mei"),
    ("森", "sen"),
    ("豪", "hao"),
    ("富", "fu"),
    ("瀚", "han"),
    ("蓝", "lan"),
    ("拓", "tuo"),
    ("格", "ge"),
    ("朗", "lang"),
    ("赛", "sai"),
    ("启", "qi"),
    ("精", "jing"),
    ("智", "zhi"),
    ("宝", "bao"),
    ("舜", "shun"),
    ("鸿", "hong"),
    ("普", "pu"),
    ("威", "wei"),
    ("顺", "shun"),
    ("昊", "hao"),
    ("晨", "chen"),
    ("悦", "yue"),
    ("展", "zhan"),
];

/// (suffix, weight).
const SUFFIXES: &[(&str, u32)] = &[
    ("有限公司", 68),
    ("股份有限公司", 20),
    ("(集团)有限公司", 7),
    ("有限责任公司", 5),
];

/// (surname, pinyin, weight), roughly by frequency.
const SURNAMES: &[(&str, &str, u32)] = &[
    ("王", "wang", 72),
    ("李", "li", 71),
    ("张", "zhang", 68),
    ("刘", "liu", 54),
    ("陈", "chen", 45),
    ("杨", "yang", 33),
    ("黄", "huang", 25),
    ("赵", "zhao", 20),
    ("吴", "wu", 20),
    ("周", "zhou", 19),
    ("徐", "xu", 15),
    ("孙", "sun", 15),
    ("马", "ma", 14),
    ("朱", "zhu", 13),
    ("胡", "hu", 12),
    ("郭", "guo", 12),
    ("何", "he", 11),
    ("高", "gao", 11),
    ("林", "lin", 11),
    ("罗", "luo", 10),
    ("郑", "zheng", 10),
    ("梁", "liang", 9),
    ("谢", "xie", 7),
    ("宋", "song", 7),
    ("唐", "tang", 7),
    ("许", "xu", 6),
    ("韩", "han", 6),
    ("冯", "feng", 6),
    ("邓", "deng", 6),
    ("曹", "cao", 6),
    ("彭", "peng", 5),
    ("曾", "zeng", 5),
    ("肖", "xiao", 5),
    ("田", "tian", 5),
    ("董", "dong", 5),
    ("袁", "yuan", 4),
    ("潘", "pan", 4),
    ("蒋", "jiang", 4),
    ("蔡", "cai", 4),
    ("余", "yu", 4),
    ("杜", "du", 4),
    ("叶", "ye", 4),
    ("程", "cheng", 4),
    ("苏", "su", 4),
    ("魏", "wei", 4),
    ("吕", "lv", 4),
    ("丁", "ding", 3),
    ("沈", "shen", 3),
    ("姚", "yao", 3),
    ("卢", "lu", 3),
    ("姜", "jiang", 3),
    ("崔", "cui", 3),
    ("钟", "zhong", 3),
    ("谭", "tan", 3),
    ("陆", "lu", 3),
    ("汪", "wang", 3),
    ("范", "fan", 3),
    ("石", "shi", 3),
    ("廖", "liao", 3),
    ("贾", "jia", 3),
    ("夏", "xia", 3),
    ("方", "fang", 3),
    ("白", "bai", 2),
    ("孟", "meng", 2),
    ("熊", "xiong", 2),
    ("秦", "qin", 2),
    ("邱", "qiu", 2),
    ("江", "jiang", 2),
    ("薛", "xue", 2),
    ("雷", "lei", 2),
];

/// Characters of given names, with pinyin.
const GIVEN_CHARS: &[(&str, &str)] = &[
    ("伟", "wei"),
    ("芳", "fang"),
    ("娜", "na"),
    ("敏", "min"),
    ("静", "jing"),
    ("丽", "li"),
    ("强", "qiang"),
    ("磊", "lei"),
    ("军", "jun"),
    ("洋", "yang"),
    ("勇", "yong"),
    ("艳", "yan"),
    ("杰", "jie"),
    ("涛", "tao"),
    ("明", "ming"),
    ("超", "chao"),
    ("秀", "xiu"),
    ("霞", "xia"),
    ("平", "ping"),
    ("刚", "gang"),
    ("桂", "gui"),
    ("英", "ying"),
    ("华", "hua"),
    ("建", "jian"),
    ("国", "guo"),
    ("文", "wen"),
    ("辉", "hui"),
    ("玲", "ling"),
    ("婷", "ting"),
    ("鹏", "peng"),
    ("斌", "bin"),
    ("宇", "yu"),
    ("浩", "hao"),
    ("凯", "kai"),
    ("俊", "jun"),
    ("帆", "fan"),
    ("晓", "xiao"),
    ("燕", "yan"),
    ("红", "hong"),
    ("志", "zhi"),
    ("海", "hai"),
    ("峰", "feng"),
    ("雪", "xue"),
    ("琳", "lin"),
    ("欣", "xin"),
    ("佳", "jia"),
    ("嘉", "jia"),
    ("子", "zi"),
    ("晨", "chen"),
    ("博", "bo"),
    ("思", "si"),
    ("雨", "yu"),
    ("慧", "hui"),
    ("倩", "qian"),
    ("亮", "liang"),
    ("成", "cheng"),
];

/// (title, decision role from contact::DECISION_ROLES, weight).
const TITLES: &[(&str, &str, u32)] = &[
    ("采购经理", "采购", 20),
    ("采购主管", "采购", 14),
    ("采购专员", "采购", 10),
    ("总经理", "决策者", 8),
    ("董事长", "决策者", 3),
    ("副总经理", "影响者", 6),
    ("运营总监", "影响者", 4),
    ("技术总监", "技术把关", 6),
    ("工程师", "技术把关", 6),
    ("财务经理", "财务", 6),
    ("生产经理", "使用者", 6),
    ("设备主管", "使用者", 4),
    ("行政主管", "使用者", 5),
    ("仓储经理", "使用者", 3),
    ("项目经理", "其他", 3),
];

const MOBILE_PREFIXES: &[&str] = &[
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153",
    "155", "156", "157", "158", "159", "166", "173", "175", "176", "177", "178", "180", "181",
    "182", "183", "185", "186", "187", "188", "189", "191", "198", "199",
];

const SOURCE_CHANNEL_WEIGHTS: &[(&str, u32)] = &[
    ("老客户转介绍", 18),
    ("展会", 16),
    ("官网", 14),
    ("电话营销", 12),
    ("线上广告", 10),
    ("合作伙伴", 12),
    ("招投标", 10),
    ("其他", 8),
];

const STATUS_WEIGHTS: &[(CustomerStatus, u32)] = &[
    (CustomerStatus::Active, 72),
    (CustomerStatus::Prospect, 10),
    (CustomerStatus::Paused, 8),
    (CustomerStatus::Lost, 10),
];

const COMPLAINTS: &[&str] = &[
    "交货延期,影响客户生产计划",
    "产品质量问题:部分批次不良率偏高",
    "发票开具信息有误,要求重开",
    "售后响应慢,报修两天未上门",
    "物流包装破损,部分货物受损",
    "到货数量与订单不符",
    "价格调整未提前通知",
    "送货人员服务态度差",
];

const SERVICES: &[&str] = &[
    "设备安装调试",
    "上门维修",
    "定期保养巡检",
    "使用培训",
    "退换货处理",
    "技术咨询答复",
    "备件更换",
];

// ---------------------------------------------------------------- helpers

fn pick<'a, T>(rng: &mut StdRng, items: &'a [(T, u32)]) -> &'a T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.gen_range(0..total);
    for (item, w) in items {
        if x < *w {
            return item;
        }
        x -= w;
    }
    &items[items.len() - 1].0
}

fn one<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

/// A uniformly random date in `from..=to` (`from` when the range is empty).
fn date_between(rng: &mut StdRng, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    let span = (to - from).num_days();
    if span <= 0 {
        from
    } else {
        from + Duration::days(rng.gen_range(0..=span))
    }
}

fn fen(amount: i64) -> Fen {
    Fen::new(amount.clamp(0, MAX_FEN)).unwrap_or_default()
}

/// FNV-1a: a stable 64-bit fingerprint of a name (std's hasher may change between releases).
fn fingerprint(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

const USCC_CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const USCC_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

/// Appends the GB 32100 check character to the first 17 characters of a USCC.
pub fn with_uscc_check(first17: &str) -> Option<String> {
    if first17.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in first17.bytes().zip(USCC_WEIGHTS) {
        sum += USCC_CHARS.iter().position(|x| *x == c)? as u32 * w;
    }
    let check = USCC_CHARS[((31 - sum % 31) % 31) as usize] as char;
    Some(format!("{first17}{check}"))
}

/// The GB 11714 check character of an 8-character organization code body.
pub fn org_code_check(body: &str) -> Option<char> {
    const W: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
    if body.len() != 8 {
        return None;
    }
    let mut sum = 0;
    for (c, w) in body.chars().zip(W) {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            _ => return None,
        };
        sum += v * w;
    }
    Some(match 11 - sum % 11 {
        10 => 'X',
        11 => '0',
        n => char::from_digit(n, 10).unwrap_or('0'),
    })
}

/// A valid USCC for customer number `n` (unique per `n`): 9 (工商) 1 (企业),
/// division code, organization code (digits before 2015, `MA…` after), check.
fn uscc_for(n: u64, division4: &str, district: u32, founded_year: i32) -> Option<String> {
    let body = if founded_year >= 2015 {
        // Multiplying by a number coprime to 31^6 is a bijection: unique bodies.
        const SPACE: u64 = 31u64.pow(6);
        let mut m = (n.wrapping_mul(1_000_003).wrapping_add(7)) % SPACE;
        let mut tail = [b'0'; 6];
        for slot in tail.iter_mut().rev() {
            *slot = USCC_CHARS[(m % 31) as usize];
            m /= 31;
        }
        format!("MA{}", std::str::from_utf8(&tail).ok()?)
    } else {
        // Coprime to 10^8: unique 8-digit bodies.
        format!(
            "{:08}",
            (n.wrapping_mul(7_654_321).wrapping_add(12_345_679)) % 100_000_000
        )
    };
    let check = org_code_check(&body)?;
    with_uscc_check(&format!("91{division4}{district:02}{body}{check}"))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Size {
    Small,
    Medium,
    Large,
}

// ---------------------------------------------------------------- generator

/// Streams demo customers; see the module docs.
pub struct DemoGenerator {
    cfg: DemoConfig,
    rng: StdRng,
    produced: u64,
    next_code: BTreeMap<i32, u64>,
    names: HashSet<u64>,
    /// Round-robin position per owner group (index into `groups`).
    rr: Vec<usize>,
    /// Owner indices per sales region, then all owners last.
    groups: Vec<(Option<&'static str>, Vec<usize>)>,
}

impl Iterator for DemoGenerator {
    type Item = DemoCustomer;

    fn next(&mut self) -> Option<DemoCustomer> {
        if self.produced >= self.total() {
            return None;
        }
        let n = self.produced;
        self.produced += 1;
        Some(match n {
            0 => self.example_c2024001(),
            1 => self.example_c2024002(),
            _ => self.customer(n),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.total() - self.produced).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}

impl DemoGenerator {
    pub fn new(cfg: DemoConfig) -> DemoGenerator {
        let rng = StdRng::seed_from_u64(cfg.seed);
        let mut next_code: BTreeMap<i32, u64> =
            cfg.code_floors.iter().map(|(y, n)| (*y, n + 1)).collect();
        // C2024001 and C2024002 are the examples' own codes.
        let c2024 = next_code.entry(2024).or_insert(3);
        *c2024 = (*c2024).max(3);
        let mut groups: Vec<(Option<&'static str>, Vec<usize>)> = crate::region::SALES_REGIONS
            .iter()
            .map(|r| {
                (
                    Some(*r),
                    cfg.owners
                        .iter()
                        .enumerate()
                        .filter(|(_, o)| o.team.as_deref().is_some_and(|t| t.starts_with(r)))
                        .map(|(i, _)| i)
                        .collect(),
                )
            })
            .collect();
        groups.push((None, (0..cfg.owners.len()).collect()));
        let rr = vec![0; groups.len()];
        DemoGenerator {
            cfg,
            rng,
            produced: 0,
            next_code,
            names: HashSet::new(),
            rr,
            groups,
        }
    }

    /// Customers this generator yields in all (at least the two examples).
    pub fn total(&self) -> u64 {
        self.cfg.customers.max(2)
    }

    pub fn today(&self) -> NaiveDate {
        self.cfg.today
    }

    /// Up to `max` more customers (empty when done).
    pub fn next_chunk(&mut self, max: usize) -> Vec<DemoCustomer> {
        self.by_ref().take(max).collect()
    }

    fn owner_for(&mut self, region: Option<&str>) -> (Option<i64>, Option<String>) {
        let g = self
            .groups
            .iter()
            .position(|(r, members)| !members.is_empty() && (r.is_none() || *r == region))
            .unwrap_or(self.groups.len() - 1);
        let members = &self.groups[g].1;
        if members.is_empty() {
            return (None, None);
        }
        let owner = &self.cfg.owners[members[self.rr[g] % members.len()]];
        self.rr[g] += 1;
        (Some(owner.user_id), owner.team.clone())
    }

    fn code(&mut self, year: i32) -> String {
        let n = self.next_code.entry(year).or_insert(1);
        let code = format!("C{year}{n:03}");
        *n += 1;
        code
    }

    fn uscc(&self, n: u64, city: &City, district: u32, founded: NaiveDate) -> Option<String> {
        uscc_for(n, city.division, district, founded.year())
            .filter(|u| !self.cfg.taken_usccs.contains(u))
    }

    fn person(&mut self) -> (String, String, String) {
        let (surname, s_py, _) = *pick_triple(&mut self.rng, SURNAMES);
        let (g1, p1) = *one(&mut self.rng, GIVEN_CHARS);
        if self.rng.gen_bool(0.7) {
            let (g2, p2) = *one(&mut self.rng, GIVEN_CHARS);
            (
                format!("{surname}{g1}{g2}"),
                s_py.to_string(),
                format!("{p1}{p2}"),
            )
        } else {
            (format!("{surname}{g1}"), s_py.to_string(), p1.to_string())
        }
    }

    fn landline(&mut self, area: &str) -> String {
        let first = self.rng.gen_range(2..=8);
        let rest = self.rng.gen_range(0..10_000_000);
        if self.rng.gen_bool(0.15) {
            format!("{area}-{first}{rest:07}-{}", self.rng.gen_range(800..=8999))
        } else {
            format!("{area}-{first}{rest:07}")
        }
    }

    fn mobile(&mut self) -> String {
        let prefix = one(&mut self.rng, MOBILE_PREFIXES);
        format!("{prefix}{:08}", self.rng.gen_range(0..100_000_000))
    }

    fn contacts(&mut self, city: &City, domain: &str, count: usize) -> Vec<ContactData> {
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            let (name, s_py, g_py) = self.person();
            // The primary contact is usually the buyer.
            let (title, role, _) = if i == 0 && self.rng.gen_bool(0.6) {
                *pick_triple(&mut self.rng, &TITLES[..3])
            } else {
                *pick_triple(&mut self.rng, TITLES)
            };
            let landline = self
                .rng
                .gen_bool(if i == 0 { 0.85 } else { 0.6 })
                .then(|| self.landline(city.area));
            let mobile = self.rng.gen_bool(0.8).then(|| self.mobile());
            let email = match self.rng.gen_range(0..100) {
                0..=54 => Some(format!("{g_py}.{s_py}@{domain}")),
                55..=64 => Some(format!(
                    "{s_py}{g_py}{}@163.com",
                    self.rng.gen_range(1..100)
                )),
                65..=71 => Some(format!(
                    "{}@qq.com",
                    self.rng.gen_range(10_000_000u64..3_000_000_000)
                )),
                _ => None,
            };
            out.push(ContactData {
                name,
                title: Some(title.to_string()),
                decision_role: Some(role.to_string()),
                landline,
                mobile,
                email,
                id_number: None,
                is_primary: i == 0,
                notes: None,
            });
        }
        out
    }

    /// A unique company name and its e-mail domain.
    fn company_name(&mut self, city: &City, industry: &str) -> (String, String) {
        let words = industry_words(industry);
        for attempt in 0.. {
            let (b1, p1) = *one(&mut self.rng, BRAND_CHARS);
            let (b2, p2) = *one(&mut self.rng, BRAND_CHARS);
            if b1 == b2 {
                continue;
            }
            let word = one(&mut self.rng, words);
            let suffix = pick(&mut self.rng, SUFFIXES);
            let shi = if self.rng.gen_bool(0.4) { "市" } else { "" };
            // Past a few collisions, a branch in brackets keeps names unique.
            let name = if attempt < 8 {
                format!("{}{shi}{b1}{b2}{word}{suffix}", city.name)
            } else {
                format!("{b1}{b2}{word}({}{attempt}){suffix}", city.name)
            };
            if self.names.insert(fingerprint(&name)) {
                let tld = one(&mut self.rng, &[".com", ".com.cn", ".cn", ".net"]);
                return (name, format!("{p1}{p2}{tld}"));
            }
        }
        unreachable!("the loop only ends by returning")
    }

    fn address(&mut self, city: &City) -> String {
        let district = one(&mut self.rng, districts(city.name));
        let road = one(&mut self.rng, ROADS);
        let no = self.rng.gen_range(1..=999);
        if MUNICIPALITIES.contains(&city.province) {
            format!("{}{district}{road}{no}号", province_full(city.province))
        } else {
            format!(
                "{}{}市{district}{road}{no}号",
                province_full(city.province),
                city.name
            )
        }
    }

    fn size(&mut self) -> (Size, i64, i64) {
        let (size, employees, per_head_yuan) = match self.rng.gen_range(0..100) {
            0..=54 => (
                Size::Small,
                self.rng.gen_range(8..100),
                self.rng.gen_range(200_000..800_000i64),
            ),
            55..=89 => (
                Size::Medium,
                self.rng.gen_range(100..1000),
                self.rng.gen_range(300_000..1_200_000i64),
            ),
            _ => (
                Size::Large,
                self.rng.gen_range(1000..30_000),
                self.rng.gen_range(400_000..2_000_000i64),
            ),
        };
        // Revenue in whole 万元, as companies state it.
        let revenue_fen = employees * per_head_yuan / 10_000 * 10_000 * 100;
        (size, employees, revenue_fen)
    }

    /// Yearly purchase in yuan, by size: integer buckets stand in for a log-normal.
    fn annual_purchase_yuan(&mut self, size: Size) -> i64 {
        const BUCKETS: [(i64, i64); 6] = [
            (10_000, 30_000),
            (30_000, 100_000),
            (100_000, 300_000),
            (300_000, 1_000_000),
            (1_000_000, 3_000_000),
            (3_000_000, 10_000_000),
        ];
        let weights: [u32; 6] = match size {
            Size::Small => [40, 35, 18, 6, 1, 0],
            Size::Medium => [8, 22, 35, 25, 9, 1],
            Size::Large => [0, 5, 20, 35, 28, 12],
        };
        let items: Vec<((i64, i64), u32)> = BUCKETS.iter().copied().zip(weights).collect();
        let (lo, hi) = *pick(&mut self.rng, &items);
        self.rng.gen_range(lo..hi)
    }

    /// The custom fields the preset schemes read (migration 3 adds them):
    /// a prospect's 意向阶段 and, when it is promising, 预计成交日期 (for the
    /// intent funnel and ABCD); a declared 需求类型 for some customers.
    fn preset_custom_values(
        &mut self,
        status: CustomerStatus,
        today: NaiveDate,
    ) -> Map<String, serde_json::Value> {
        let mut out = Map::new();
        let stage = match status {
            CustomerStatus::Prospect => Some(*pick(
                &mut self.rng,
                &[
                    ("潜在", 30),
                    ("目标", 25),
                    ("意向", 20),
                    ("大希望", 10),
                    ("劣质", 10),
                    ("无效", 5),
                ],
            )),
            CustomerStatus::Active => self.rng.gen_bool(0.5).then_some("成交"),
            _ => None,
        };
        if let Some(stage) = stage {
            out.insert("intent_stage".into(), stage.into());
            if ["目标", "意向", "大希望"].contains(&stage) {
                let close = today + Duration::days(self.rng.gen_range(10..=270));
                out.insert("expected_close_on".into(), close.to_string().into());
            }
        }
        if self.rng.gen_bool(0.35) {
            let need = *pick(
                &mut self.rng,
                &[("产品采购型", 60), ("服务咨询型", 25), ("合作开发型", 15)],
            );
            out.insert("need_type".into(), need.into());
        }
        out
    }

    fn orders(
        &mut self,
        n: u64,
        size: Size,
        lines: &[String],
        from: NaiveDate,
        to: NaiveDate,
    ) -> Vec<OrderData> {
        let span = (to - from).num_days();
        if span < 0 {
            return Vec::new();
        }
        let annual = self.annual_purchase_yuan(size);
        let per_year: i64 = match size {
            Size::Small => *pick(&mut self.rng, &[(3, 40), (5, 30), (8, 20), (13, 10)]),
            Size::Medium => self.rng.gen_range(5..=16),
            Size::Large => self.rng.gen_range(10..=64),
        };
        // Some customers grow steadily: the material for 潜力型 and growth rules.
        let growth_pct: i64 = if self.rng.gen_bool(0.2) {
            self.rng.gen_range(10..40)
        } else {
            0
        };
        let count = ((per_year * (span + 1) + self.rng.gen_range(0..365)) / 365).clamp(1, 200);
        let mut dates: Vec<NaiveDate> = (0..count)
            .map(|_| date_between(&mut self.rng, from, to))
            .collect();
        dates.sort_unstable();
        let mut out = Vec::with_capacity(dates.len());
        for (k, date) in dates.into_iter().enumerate() {
            let years_in = (date - from).num_days() / 365;
            let base = annual / per_year * self.rng.gen_range(60..=140) / 100
                * (100 + growth_pct * years_in)
                / 100;
            // Whole yuan, often rounded to hundreds; a few with fen.
            let yuan = if self.rng.gen_bool(0.5) {
                (base / 100).max(5) * 100
            } else {
                base.max(500)
            };
            let cents = if self.rng.gen_bool(0.2) {
                self.rng.gen_range(1..100)
            } else {
                0
            };
            let line = if lines.is_empty() || self.rng.gen_bool(0.08) {
                one(&mut self.rng, PRODUCT_LINES).to_string()
            } else {
                one(&mut self.rng, lines).clone()
            };
            out.push(OrderData {
                order_no: Some(format!("SO{}{n:07}{k:02}", date.format("%y%m%d"))),
                ordered_on: date,
                amount: fen(yuan * 100 + cents),
                product_line: Some(line),
                notes: None,
            });
        }
        out
    }

    fn ticket_status(&mut self, on: NaiveDate) -> TicketStatus {
        match (self.cfg.today - on).num_days() {
            0..=6 => *pick(
                &mut self.rng,
                &[(TicketStatus::Open, 60), (TicketStatus::InProgress, 40)],
            ),
            7..=30 => *pick(
                &mut self.rng,
                &[
                    (TicketStatus::InProgress, 30),
                    (TicketStatus::Resolved, 50),
                    (TicketStatus::Closed, 20),
                ],
            ),
            _ => *pick(
                &mut self.rng,
                &[(TicketStatus::Resolved, 35), (TicketStatus::Closed, 65)],
            ),
        }
    }

    fn interaction(
        &mut self,
        kind: InteractionKind,
        on: NaiveDate,
        line: &str,
        owner: Option<i64>,
    ) -> DemoInteraction {
        let (summary, severity, status, satisfaction, user_id) = match kind {
            InteractionKind::Visit => {
                let s = *one(
                    &mut self.rng,
                    &[
                        "上门拜访,沟通年度采购计划",
                        "拜访采购部门,介绍新品",
                        "走访生产现场,了解用量",
                        "拜访客户管理层,回顾合作情况",
                    ],
                );
                (
                    format!("{s}({line})"),
                    None,
                    None,
                    self.rng.gen_bool(0.2).then(|| self.rng.gen_range(3..=5)),
                    owner,
                )
            }
            InteractionKind::Call => {
                let s = *one(
                    &mut self.rng,
                    &[
                        "电话回访,确认到货情况",
                        "电话沟通报价",
                        "电话跟进付款进度",
                        "电话确认下季度需求",
                    ],
                );
                (format!("{s}({line})"), None, None, None, owner)
            }
            InteractionKind::Email => (
                format!("邮件发送{line}报价单及产品资料"),
                None,
                None,
                None,
                owner,
            ),
            InteractionKind::Meeting => {
                let s = *one(
                    &mut self.rng,
                    &[
                        "年度合作洽谈会",
                        "季度业务回顾会议",
                        "技术方案交流会",
                        "合同条款商谈",
                    ],
                );
                (s.to_string(), None, None, None, owner)
            }
            InteractionKind::WebVisit => (format!("访问官网{line}产品页"), None, None, None, None),
            InteractionKind::CampaignResponse => (
                format!("报名参加{}年{line}新品推介会", on.year()),
                None,
                None,
                None,
                None,
            ),
            InteractionKind::Service => {
                let status = self.ticket_status(on);
                let s = *one(&mut self.rng, SERVICES);
                (
                    format!("{s}({line})"),
                    None,
                    Some(status),
                    self.rng.gen_bool(0.6).then(|| self.rng.gen_range(3..=5)),
                    self.cfg.service_user,
                )
            }
            InteractionKind::Complaint => {
                let status = self.ticket_status(on);
                let severity = *pick(
                    &mut self.rng,
                    &[
                        (Severity::Low, 30),
                        (Severity::Medium, 45),
                        (Severity::High, 20),
                        (Severity::Critical, 5),
                    ],
                );
                let s = *one(&mut self.rng, COMPLAINTS);
                (
                    s.to_string(),
                    Some(severity),
                    Some(status),
                    self.rng.gen_bool(0.5).then(|| self.rng.gen_range(1..=3)),
                    self.cfg.service_user,
                )
            }
        };
        DemoInteraction {
            data: InteractionData {
                kind,
                occurred_on: on,
                summary,
                severity,
                status,
                satisfaction,
            },
            user_id,
        }
    }

    fn customer(&mut self, n: u64) -> DemoCustomer {
        let today = self.cfg.today;
        let industry = *pick(&mut self.rng, INDUSTRY_WEIGHTS);
        let city = pick_city(&mut self.rng);
        let region = sales_region_of_province(city.province);
        let status = *pick(&mut self.rng, STATUS_WEIGHTS);
        let (size, employees, revenue_fen) = self.size();
        // Cooperation start within ten years, more often recent (min of two draws).
        let back = self
            .rng
            .gen_range(30..3650)
            .min(self.rng.gen_range(30..3650));
        let start = today - Duration::days(back);
        let cooperation_start_on = (status != CustomerStatus::Prospect).then_some(start);
        let founded_on =
            (start - Duration::days(self.rng.gen_range(180..25 * 365))).max(ymd(1980, 1, 1));
        let (name, domain) = self.company_name(city, industry);
        let district = self.rng.gen_range(2..=12);
        let has_uscc = self.rng.gen_bool(match size {
            Size::Large => 0.95,
            Size::Medium => 0.8,
            Size::Small => 0.55,
        });
        let uscc = if has_uscc {
            self.uscc(n, city, district, founded_on)
        } else {
            None
        };
        let prefs = preferred_lines(industry);
        let mut product_types: Vec<String> = Vec::new();
        for _ in 0..self.rng.gen_range(1..=3) {
            let l = one(&mut self.rng, prefs).to_string();
            if !product_types.contains(&l) {
                product_types.push(l);
            }
        }
        let (owner_id, team) = self.owner_for(region);
        let address = self.rng.gen_bool(0.9).then(|| self.address(city));

        // When buying happened: the last three years of cooperation; paused and
        // lost customers stopped some months ago.
        let horizon = today - Duration::days(3 * 365);
        let active_until = match status {
            CustomerStatus::Active | CustomerStatus::Prospect => today,
            CustomerStatus::Paused => today - Duration::days(self.rng.gen_range(90..=270)),
            CustomerStatus::Lost => today - Duration::days(self.rng.gen_range(200..=700)),
        };
        let orders = match status {
            CustomerStatus::Prospect => Vec::new(),
            _ => self.orders(n, size, &product_types, start.max(horizon), active_until),
        };
        let declared = self.rng.gen_bool(0.25).then(|| {
            let a = self.annual_purchase_yuan(size);
            fen(a / 10_000 * 10_000 * 100)
        });

        // Interactions: about three per customer, more for big ones.
        let first_contact = if status == CustomerStatus::Prospect {
            today - Duration::days(self.rng.gen_range(7..730))
        } else {
            start - Duration::days(self.rng.gen_range(0..60))
        };
        let from = first_contact.max(horizon);
        let until = (active_until + Duration::days(30)).min(today);
        let count = match size {
            Size::Small => self.rng.gen_range(0..=3),
            Size::Medium => self.rng.gen_range(1..=5),
            Size::Large => self.rng.gen_range(2..=8),
        };
        let line = product_types
            .first()
            .cloned()
            .unwrap_or_else(|| PRODUCT_LINES[0].to_string());
        let mut interactions = Vec::with_capacity(count + 1);
        for _ in 0..count {
            let kind = *pick(
                &mut self.rng,
                &[
                    (InteractionKind::Visit, 22),
                    (InteractionKind::Call, 32),
                    (InteractionKind::Email, 14),
                    (InteractionKind::Meeting, 7),
                    (InteractionKind::WebVisit, 6),
                    (InteractionKind::CampaignResponse, 4),
                    (
                        InteractionKind::Service,
                        if status == CustomerStatus::Prospect {
                            0
                        } else {
                            15
                        },
                    ),
                ],
            );
            let on = date_between(&mut self.rng, from, until);
            interactions.push(self.interaction(kind, on, &line, owner_id));
        }
        if status != CustomerStatus::Prospect {
            let complaints = *pick(&mut self.rng, &[(0usize, 870), (1, 90), (2, 30), (3, 10)]);
            for _ in 0..complaints {
                let on = date_between(&mut self.rng, from.max(start), until);
                interactions.push(self.interaction(
                    InteractionKind::Complaint,
                    on,
                    &line,
                    owner_id,
                ));
            }
        }
        interactions.sort_by_key(|i| i.data.occurred_on);

        let contact_count = match size {
            Size::Small => *pick(&mut self.rng, &[(1usize, 55), (2, 35), (3, 10)]),
            _ => *pick(&mut self.rng, &[(1usize, 25), (2, 45), (3, 30)]),
        };
        let contacts = self.contacts(city, &domain, contact_count);
        let code_year = cooperation_start_on.unwrap_or(first_contact).year();
        let code = self.code(code_year);
        let source_channel = Some(pick(&mut self.rng, SOURCE_CHANNEL_WEIGHTS).to_string());
        let custom_fields = self.preset_custom_values(status, today);
        let mut data = CustomerData {
            code: Some(code),
            name,
            aliases: Vec::new(),
            uscc,
            industry: Some(industry.to_string()),
            employees: Some(employees),
            annual_revenue: Some(fen(revenue_fen)),
            province: Some(city.province.to_string()),
            city: Some(city.name.to_string()),
            sales_region: region.map(str::to_string),
            address,
            founded_on: Some(founded_on),
            cooperation_start_on,
            product_types,
            declared_annual_purchase: declared,
            status,
            source_channel,
            owner_id,
            notes: None,
            custom_fields,
            missing_fields: Vec::new(),
        };
        data.missing_fields = data.gaps();
        DemoCustomer {
            data,
            team,
            contacts,
            orders,
            interactions,
        }
    }

    /// Later records of the examples: after 2024-03-12 up to today.
    fn later_orders(
        &mut self,
        prefix: &str,
        every_days: i64,
        lo_yuan: i64,
        hi_yuan: i64,
        lines: &[&str],
    ) -> Vec<OrderData> {
        let mut out = Vec::new();
        let mut date = EXAMPLE_DATE + Duration::days(self.rng.gen_range(10..every_days));
        let mut k = 0;
        while date <= self.cfg.today {
            k += 1;
            let yuan = self.rng.gen_range(lo_yuan..hi_yuan) / 100 * 100;
            out.push(OrderData {
                order_no: Some(format!("{prefix}-{}{k:02}", date.format("%Y%m"))),
                ordered_on: date,
                amount: fen(yuan * 100),
                product_line: Some(one(&mut self.rng, lines).to_string()),
                notes: None,
            });
            date += Duration::days(self.rng.gen_range(every_days / 2..every_days * 3 / 2));
        }
        out
    }

    /// The examples' hand-written interactions; tickets are handled by the service user.
    fn fixed_interactions(
        &self,
        fixed: &[FixedInteraction],
        owner_id: Option<i64>,
    ) -> Vec<DemoInteraction> {
        fixed
            .iter()
            .map(
                |&(occurred_on, kind, summary, severity, status, satisfaction)| DemoInteraction {
                    data: InteractionData {
                        kind,
                        occurred_on,
                        summary: summary.to_string(),
                        severity,
                        status,
                        satisfaction,
                    },
                    user_id: if kind.is_ticket() {
                        self.cfg.service_user
                    } else {
                        owner_id
                    },
                },
            )
            .collect()
    }

    fn example_owner(&mut self, region: &str) -> (Option<i64>, Option<String>) {
        self.owner_for(Some(region))
    }

    /// C2024001: design.md's 战略型 example. 120万 in the 12 months before
    /// 2024-03-12, cooperating since 2021-03-15, no complaints ever.
    fn example_c2024001(&mut self) -> DemoCustomer {
        let name = "华东精密制造(苏州)有限公司".to_string();
        self.names.insert(fingerprint(&name));
        let city = city_named("苏州");
        let (owner_id, team) = self.example_owner("华东");
        let founded = ymd(2008, 5, 20);
        const ORDERS: &[(NaiveDate, i64, &str)] = &[
            // 2021-04 … 2022-03: 60万
            (ymd(2021, 4, 20), 128_000, "精密轴承"),
            (ymd(2021, 7, 15), 146_500, "传动部件"),
            (ymd(2021, 10, 19), 152_000, "精密轴承"),
            (ymd(2022, 1, 18), 173_500, "精密轴承"),
            // 2022-04 … 2023-03-12: 90万
            (ymd(2022, 4, 19), 205_000, "传动部件"),
            (ymd(2022, 7, 12), 218_600, "精密轴承"),
            (ymd(2022, 10, 18), 236_400, "精密轴承"),
            (ymd(2023, 1, 10), 240_000, "传动部件"),
            // 2023-03-13 … 2024-03-12: exactly 120万
            (ymd(2023, 3, 28), 86_500, "精密轴承"),
            (ymd(2023, 4, 25), 112_000, "传动部件"),
            (ymd(2023, 5, 30), 95_800, "精密轴承"),
            (ymd(2023, 6, 27), 104_300, "精密轴承"),
            (ymd(2023, 7, 25), 78_600, "传动部件"),
            (ymd(2023, 8, 29), 131_200, "精密轴承"),
            (ymd(2023, 9, 26), 99_500, "精密轴承"),
            (ymd(2023, 10, 31), 88_750, "传动部件"),
            (ymd(2023, 11, 28), 116_400, "精密轴承"),
            (ymd(2023, 12, 26), 102_950, "精密轴承"),
            (ymd(2024, 1, 30), 91_000, "传动部件"),
            (ymd(2024, 2, 27), 93_000, "精密轴承"),
        ];
        let mut orders: Vec<OrderData> = ORDERS
            .iter()
            .enumerate()
            .map(|(k, (d, yuan, line))| OrderData {
                order_no: Some(format!("HD{}{:02}", d.format("%Y%m"), k + 1)),
                ordered_on: *d,
                amount: fen(yuan * 100),
                product_line: Some(line.to_string()),
                notes: None,
            })
            .collect();
        orders.extend(self.later_orders("HD", 30, 85_000, 135_000, &["精密轴承", "传动部件"]));
        let fixed: &[FixedInteraction] = &[
            (
                ymd(2021, 3, 2),
                InteractionKind::Visit,
                "首次拜访采购部,介绍精密轴承产品线",
                None,
                None,
                None,
            ),
            (
                ymd(2021, 3, 10),
                InteractionKind::Meeting,
                "年度供货框架协议谈判",
                None,
                None,
                None,
            ),
            (
                ymd(2022, 6, 15),
                InteractionKind::Visit,
                "走访生产现场,评估传动部件用量",
                None,
                None,
                Some(5),
            ),
            (
                ymd(2023, 5, 16),
                InteractionKind::Visit,
                "拜访王经理,沟通下半年采购计划",
                None,
                None,
                Some(5),
            ),
            (
                ymd(2023, 9, 20),
                InteractionKind::Meeting,
                "季度业务回顾会议",
                None,
                None,
                None,
            ),
            (
                ymd(2024, 1, 10),
                InteractionKind::Call,
                "电话确认2024年度采购预算",
                None,
                None,
                None,
            ),
            (
                ymd(2024, 2, 28),
                InteractionKind::Service,
                "定期保养巡检(精密轴承)",
                None,
                Some(TicketStatus::Closed),
                Some(5),
            ),
        ];
        let mut interactions = self.fixed_interactions(fixed, owner_id);
        let mut on = EXAMPLE_DATE + Duration::days(20);
        while on <= self.cfg.today {
            let kind = *pick(
                &mut self.rng,
                &[
                    (InteractionKind::Visit, 40),
                    (InteractionKind::Call, 40),
                    (InteractionKind::Meeting, 20),
                ],
            );
            let line = if self.rng.gen_bool(0.6) {
                "精密轴承"
            } else {
                "传动部件"
            };
            interactions.push(self.interaction(kind, on, line, owner_id));
            on += Duration::days(self.rng.gen_range(30..75));
        }
        let uscc = self.uscc(0, city, 71, founded);
        DemoCustomer {
            data: CustomerData {
                code: Some("C2024001".into()),
                name,
                aliases: Vec::new(),
                uscc,
                industry: Some("制造业".into()),
                employees: Some(680),
                annual_revenue: Some(fen(32_000 * 10_000 * 100)),
                province: Some("江苏".into()),
                city: Some("苏州".into()),
                sales_region: Some("华东".into()),
                address: Some("江苏省苏州市工业园区星湖街328号".into()),
                founded_on: Some(founded),
                cooperation_start_on: Some(ymd(2021, 3, 15)),
                product_types: vec!["精密轴承".into(), "传动部件".into()],
                declared_annual_purchase: Some(fen(120_000_000)),
                status: CustomerStatus::Active,
                source_channel: Some("展会".into()),
                owner_id,
                notes: None,
                custom_fields: Map::new(),
                missing_fields: Vec::new(),
            },
            team,
            contacts: vec![
                ContactData {
                    name: "王建国".into(),
                    title: Some("采购经理".into()),
                    decision_role: Some("采购".into()),
                    landline: Some("0512-62581234".into()),
                    mobile: Some("13962581234".into()),
                    email: Some("wang.jianguo@hdjm.com.cn".into()),
                    id_number: None,
                    is_primary: true,
                    notes: None,
                },
                ContactData {
                    name: "刘芳".into(),
                    title: Some("财务总监".into()),
                    decision_role: Some("财务".into()),
                    landline: Some("0512-62581238".into()),
                    mobile: None,
                    email: Some("liu.fang@hdjm.com.cn".into()),
                    id_number: None,
                    is_primary: false,
                    notes: None,
                },
            ],
            orders: up_to(orders, self.cfg.today, |o| o.ordered_on),
            interactions: sorted_up_to(interactions, self.cfg.today),
        }
    }

    /// C2024002: design.md's 优化型 example. 35万 since 2023-06-20, one
    /// delivery-delay complaint on 2024-03-12.
    fn example_c2024002(&mut self) -> DemoCustomer {
        let name = "广州优品汇商业连锁有限公司".to_string();
        self.names.insert(fingerprint(&name));
        let city = city_named("广州");
        let (owner_id, team) = self.example_owner("华南");
        let founded = ymd(2016, 9, 8);
        const ORDERS: &[(NaiveDate, i64, &str)] = &[
            (ymd(2023, 7, 5), 52_000, "仓储搬运设备"),
            (ymd(2023, 8, 22), 61_500, "清洁用品"),
            (ymd(2023, 10, 10), 48_300, "清洁用品"),
            (ymd(2023, 11, 21), 66_200, "仓储搬运设备"),
            (ymd(2024, 1, 9), 57_000, "清洁用品"),
            (ymd(2024, 2, 27), 65_000, "仓储搬运设备"),
        ];
        let mut orders: Vec<OrderData> = ORDERS
            .iter()
            .enumerate()
            .map(|(k, (d, yuan, line))| OrderData {
                order_no: Some(format!("YP{}{:02}", d.format("%Y%m"), k + 1)),
                ordered_on: *d,
                amount: fen(yuan * 100),
                product_line: Some(line.to_string()),
                notes: None,
            })
            .collect();
        orders.extend(self.later_orders("YP", 75, 20_000, 50_000, &["清洁用品", "仓储搬运设备"]));
        let complaint_status = if (self.cfg.today - EXAMPLE_DATE).num_days() > 30 {
            TicketStatus::Closed
        } else {
            TicketStatus::Open
        };
        let fixed: &[FixedInteraction] = &[
            (
                ymd(2023, 6, 12),
                InteractionKind::Call,
                "电话联系采购主管,了解门店仓储设备需求",
                None,
                None,
                None,
            ),
            (
                ymd(2023, 6, 16),
                InteractionKind::Visit,
                "拜访采购部,洽谈首批货架及清洁用品供货",
                None,
                None,
                Some(4),
            ),
            (
                ymd(2023, 9, 12),
                InteractionKind::Call,
                "电话回访,确认第二批清洁用品到货",
                None,
                None,
                None,
            ),
            (
                ymd(2023, 12, 5),
                InteractionKind::Visit,
                "拜访陈主管,沟通春节备货计划",
                None,
                None,
                None,
            ),
            (
                EXAMPLE_DATE,
                InteractionKind::Complaint,
                "交货延期:2月27日订单的仓储货架延迟两周到货,影响新门店开业",
                Some(Severity::High),
                Some(complaint_status),
                Some(2),
            ),
            (
                ymd(2024, 3, 15),
                InteractionKind::Call,
                "投诉回访:说明延期原因,承诺后续订单优先排产",
                None,
                None,
                None,
            ),
        ];
        let mut interactions = self.fixed_interactions(fixed, owner_id);
        let mut on = ymd(2024, 3, 15) + Duration::days(60);
        while on <= self.cfg.today {
            let kind = *pick(
                &mut self.rng,
                &[
                    (InteractionKind::Call, 60),
                    (InteractionKind::Email, 25),
                    (InteractionKind::Visit, 15),
                ],
            );
            interactions.push(self.interaction(kind, on, "清洁用品", owner_id));
            on += Duration::days(self.rng.gen_range(60..150));
        }
        let uscc = self.uscc(1, city, 6, founded);
        DemoCustomer {
            data: CustomerData {
                code: Some("C2024002".into()),
                name,
                aliases: Vec::new(),
                uscc,
                industry: Some("零售业".into()),
                employees: Some(85),
                annual_revenue: Some(fen(4_600 * 10_000 * 100)),
                province: Some("广东".into()),
                city: Some("广州".into()),
                sales_region: Some("华南".into()),
                address: Some("广东省广州市天河区天河路385号".into()),
                founded_on: Some(founded),
                cooperation_start_on: Some(ymd(2023, 6, 20)),
                product_types: vec!["仓储搬运设备".into(), "清洁用品".into()],
                declared_annual_purchase: Some(fen(35_000_000)),
                status: CustomerStatus::Active,
                source_channel: Some("线上广告".into()),
                owner_id,
                notes: None,
                custom_fields: Map::new(),
                missing_fields: Vec::new(),
            },
            team,
            contacts: vec![ContactData {
                name: "陈晓燕".into(),
                title: Some("采购主管".into()),
                decision_role: Some("采购".into()),
                landline: Some("020-87651234".into()),
                mobile: Some("13802561234".into()),
                email: Some("chen.xiaoyan@youpinhui.cn".into()),
                id_number: None,
                is_primary: true,
                notes: None,
            }],
            orders: up_to(orders, self.cfg.today, |o| o.ordered_on),
            interactions: sorted_up_to(interactions, self.cfg.today),
        }
    }
}

fn pick_triple<'a>(
    rng: &mut StdRng,
    items: &'a [(&'static str, &'static str, u32)],
) -> &'a (&'static str, &'static str, u32) {
    let total: u32 = items.iter().map(|t| t.2).sum();
    let mut x = rng.gen_range(0..total);
    for item in items {
        if x < item.2 {
            return item;
        }
        x -= item.2;
    }
    &items[items.len() - 1]
}

fn pick_city(rng: &mut StdRng) -> &'static City {
    let total: u32 = CITIES.iter().map(|c| c.weight).sum();
    let mut x = rng.gen_range(0..total);
    for c in CITIES {
        if x < c.weight {
            return c;
        }
        x -= c.weight;
    }
    &CITIES[0]
}

fn city_named(name: &str) -> &'static City {
    CITIES.iter().find(|c| c.name == name).unwrap_or(&CITIES[0])
}

/// Drops records dated after `today` (only possible when today is before the examples' dates).
fn up_to<T>(items: Vec<T>, today: NaiveDate, date: impl Fn(&T) -> NaiveDate) -> Vec<T> {
    items.into_iter().filter(|i| date(i) <= today).collect()
}

fn sorted_up_to(mut items: Vec<DemoInteraction>, today: NaiveDate) -> Vec<DemoInteraction> {
    items.retain(|i| i.data.occurred_on <= today);
    items.sort_by_key(|i| i.data.occurred_on);
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contact::{ContactInput, DECISION_ROLES};
    use crate::customer::{CustomerInput, CustomerRules, SOURCE_CHANNELS};
    use crate::ident::{Email, Landline, Mobile, Uscc};
    use crate::industry::PRESET_INDUSTRIES;
    use crate::interaction::InteractionInput;
    use crate::order::OrderInput;
    use crate::region::PROVINCES;

    fn config(seed: u64, today: NaiveDate, customers: u64) -> DemoConfig {
        let mut cfg = DemoConfig::new(seed, today, customers);
        cfg.owners = vec![
            DemoOwner {
                user_id: 10,
                team: Some("华东一组".into()),
            },
            DemoOwner {
                user_id: 11,
                team: Some("华东一组".into()),
            },
            DemoOwner {
                user_id: 12,
                team: Some("华南一组".into()),
            },
            DemoOwner {
                user_id: 13,
                team: Some("华北一组".into()),
            },
        ];
        cfg.service_user = Some(20);
        cfg
    }

    fn sum_between(orders: &[OrderData], from: NaiveDate, to: NaiveDate) -> i64 {
        orders
            .iter()
            .filter(|o| o.ordered_on >= from && o.ordered_on <= to)
            .map(|o| o.amount.get())
            .sum()
    }

    #[test]
    fn same_seed_same_data_and_other_seed_other_data() {
        let cases = [
            (1u64, ymd(2024, 3, 12)),
            (42, ymd(2025, 6, 30)),
            (7, ymd(2026, 1, 15)),
        ];
        for (seed, today) in cases {
            let a: Vec<DemoCustomer> = DemoGenerator::new(config(seed, today, 300)).collect();
            let b: Vec<DemoCustomer> = DemoGenerator::new(config(seed, today, 300)).collect();
            assert_eq!(a.len(), 300);
            assert_eq!(a, b, "seed {seed}");
            // Chunked generation yields the same stream.
            let mut g = DemoGenerator::new(config(seed, today, 300));
            let mut chunked = Vec::new();
            loop {
                let c = g.next_chunk(64);
                if c.is_empty() {
                    break;
                }
                chunked.extend(c);
            }
            assert_eq!(a, chunked, "seed {seed} chunked");
            let other: Vec<DemoCustomer> =
                DemoGenerator::new(config(seed + 1, today, 300)).collect();
            assert_ne!(a[2..], other[2..], "seed {seed} vs {}", seed + 1);
        }
    }

    #[test]
    fn generated_records_pass_validation_unchanged() {
        let industries: Vec<String> = PRESET_INDUSTRIES.iter().map(|s| s.to_string()).collect();
        for (seed, today, n) in [
            (42u64, ymd(2025, 6, 30), 3000u64),
            (3, ymd(2024, 3, 12), 500),
            (9, ymd(2026, 12, 31), 500),
        ] {
            let custom_fields = crate::classify::presets::preset_custom_fields();
            let rules = CustomerRules {
                industries: &industries,
                custom_fields: &custom_fields,
                today,
            };
            let mut codes = HashSet::new();
            let mut names = HashSet::new();
            let mut usccs = HashSet::new();
            for c in DemoGenerator::new(config(seed, today, n)) {
                let d = &c.data;
                assert!(codes.insert(d.code.clone()), "duplicate code {:?}", d.code);
                assert!(names.insert(d.name.clone()), "duplicate name {}", d.name);
                let code = c.code();
                assert!(
                    code.len() >= 8
                        && code.starts_with('C')
                        && code[1..].bytes().all(|b| b.is_ascii_digit()),
                    "code {code}"
                );
                if let Some(u) = &d.uscc {
                    assert_eq!(
                        Uscc::parse(u).map(|u| u.as_str().to_string()).as_ref(),
                        Ok(u),
                        "uscc {u}"
                    );
                    assert!(usccs.insert(u.clone()), "duplicate uscc {u}");
                }
                let input = CustomerInput {
                    code: d.code.clone(),
                    name: Some(d.name.clone()),
                    aliases: d.aliases.clone(),
                    uscc: d.uscc.clone(),
                    industry: d.industry.clone(),
                    employees: d.employees,
                    annual_revenue_fen: d.annual_revenue.map(Fen::get),
                    province: d.province.clone(),
                    city: d.city.clone(),
                    sales_region: d.sales_region.clone(),
                    address: d.address.clone(),
                    founded_on: d.founded_on.map(|x| x.to_string()),
                    cooperation_start_on: d.cooperation_start_on.map(|x| x.to_string()),
                    product_types: d.product_types.clone(),
                    declared_annual_purchase_fen: d.declared_annual_purchase.map(Fen::get),
                    status: Some(d.status.key().into()),
                    source_channel: d.source_channel.clone(),
                    owner_id: d.owner_id,
                    notes: d.notes.clone(),
                    custom_fields: d.custom_fields.clone(),
                };
                assert_eq!(input.validate(&rules).as_ref(), Ok(d), "customer {code}");
                let province = d.province.as_deref().unwrap_or_default();
                let region = PROVINCES
                    .iter()
                    .find(|(p, _)| *p == province)
                    .map(|(_, r)| *r);
                assert_eq!(
                    d.sales_region.as_deref(),
                    region,
                    "{code}: region of {province}"
                );
                if let Some(a) = &d.address {
                    assert!(a.starts_with(province), "{code}: address {a} in {province}");
                }
                assert!(d
                    .source_channel
                    .as_deref()
                    .is_some_and(|s| SOURCE_CHANNELS.contains(&s)));
                assert!(d
                    .product_types
                    .iter()
                    .all(|p| PRODUCT_LINES.contains(&p.as_str())));
                assert_eq!(d.owner_id.is_some(), c.team.is_some());

                assert!(
                    (1..=3).contains(&c.contacts.len()),
                    "{code}: {} contacts",
                    c.contacts.len()
                );
                assert!(c.contacts[0].is_primary && c.contacts[1..].iter().all(|x| !x.is_primary));
                for ct in &c.contacts {
                    if let Some(m) = &ct.mobile {
                        assert_eq!(
                            Mobile::parse(m).map(|m| m.as_str().to_string()).as_ref(),
                            Ok(m)
                        );
                    }
                    if let Some(l) = &ct.landline {
                        assert_eq!(Landline::parse(l).map(|l| l.formatted()).as_ref(), Ok(l));
                    }
                    if let Some(e) = &ct.email {
                        assert_eq!(
                            Email::parse(e).map(|e| e.as_str().to_string()).as_ref(),
                            Ok(e)
                        );
                    }
                    assert!(ct
                        .decision_role
                        .as_deref()
                        .is_some_and(|r| DECISION_ROLES.contains(&r)));
                    let input = ContactInput {
                        name: Some(ct.name.clone()),
                        title: ct.title.clone(),
                        decision_role: ct.decision_role.clone(),
                        landline: ct.landline.clone(),
                        mobile: ct.mobile.clone(),
                        email: ct.email.clone(),
                        id_number: ct.id_number.clone(),
                        is_primary: Some(ct.is_primary),
                        notes: ct.notes.clone(),
                    };
                    assert_eq!(input.validate().as_ref(), Ok(ct), "{code}: contact");
                }
                assert!(c
                    .orders
                    .windows(2)
                    .all(|w| w[0].ordered_on <= w[1].ordered_on));
                if d.status == CustomerStatus::Prospect {
                    assert!(c.orders.is_empty(), "{code}: a prospect with orders");
                }
                for o in &c.orders {
                    assert!(o.amount.get() >= 0);
                    assert!(
                        o.ordered_on >= d.cooperation_start_on.unwrap_or(o.ordered_on),
                        "{code}: order before cooperation"
                    );
                    let input = OrderInput {
                        order_no: o.order_no.clone(),
                        ordered_on: Some(o.ordered_on.to_string()),
                        amount_fen: Some(o.amount.get()),
                        product_line: o.product_line.clone(),
                        notes: o.notes.clone(),
                    };
                    assert_eq!(input.validate(today).as_ref(), Ok(o), "{code}: order");
                }
                if !c.orders.is_empty() && !["C2024001", "C2024002"].contains(&code) {
                    assert!(
                        c.orders[0].ordered_on >= today - Duration::days(3 * 365),
                        "{code}: orders cover three years"
                    );
                }
                assert!(c
                    .interactions
                    .windows(2)
                    .all(|w| w[0].data.occurred_on <= w[1].data.occurred_on));
                for i in &c.interactions {
                    let x = &i.data;
                    let input = InteractionInput {
                        kind: Some(x.kind.key().into()),
                        occurred_on: Some(x.occurred_on.to_string()),
                        summary: Some(x.summary.clone()),
                        severity: x.severity.map(|s| s.key().into()),
                        status: x.status.map(|s| s.key().into()),
                        satisfaction: x.satisfaction,
                    };
                    assert_eq!(input.validate(today).as_ref(), Ok(x), "{code}: interaction");
                }
            }
            assert_eq!(codes.len() as u64, n);
        }
    }

    #[test]
    fn the_two_design_examples_exactly() {
        let window = (ymd(2023, 3, 13), EXAMPLE_DATE);
        for (seed, today) in [
            (42u64, ymd(2025, 6, 30)),
            (1, EXAMPLE_DATE),
            (99, ymd(2026, 3, 1)),
        ] {
            let all: Vec<DemoCustomer> = DemoGenerator::new(config(seed, today, 5)).collect();
            let a = &all[0];
            assert_eq!(a.code(), "C2024001");
            assert_eq!(a.data.industry.as_deref(), Some("制造业"));
            assert_eq!(a.data.cooperation_start_on, Some(ymd(2021, 3, 15)));
            assert_eq!(a.data.declared_annual_purchase, Some(fen(120_000_000)));
            assert_eq!(
                sum_between(&a.orders, window.0, window.1),
                120_000_000,
                "seed {seed}"
            );
            assert!(a.orders.iter().all(|o| o.ordered_on >= ymd(2021, 3, 15)));
            assert!(a
                .interactions
                .iter()
                .all(|i| i.data.kind != InteractionKind::Complaint));
            assert_eq!(a.contacts[0].landline.as_deref(), Some("0512-62581234"));
            assert_eq!(a.contacts[0].title.as_deref(), Some("采购经理"));
            assert!(!a.data.product_types.is_empty());
            assert_eq!(
                (a.data.owner_id, a.team.as_deref()),
                (Some(10), Some("华东一组"))
            );

            let b = &all[1];
            assert_eq!(b.code(), "C2024002");
            assert_eq!(b.data.cooperation_start_on, Some(ymd(2023, 6, 20)));
            assert_eq!(sum_between(&b.orders, window.0, window.1), 35_000_000);
            assert!(b.orders.iter().all(|o| o.ordered_on >= ymd(2023, 6, 20)));
            let complaints: Vec<&InteractionData> = b
                .interactions
                .iter()
                .map(|i| &i.data)
                .filter(|i| i.kind == InteractionKind::Complaint)
                .collect();
            assert_eq!(complaints.len(), 1);
            assert_eq!(complaints[0].occurred_on, EXAMPLE_DATE);
            assert!(complaints[0].summary.contains("交货延期"));
            assert_eq!(b.contacts[0].landline.as_deref(), Some("020-87651234"));
            assert_eq!(
                (b.data.owner_id, b.team.as_deref()),
                (Some(12), Some("华南一组"))
            );
            // Later orders only up to today.
            assert!(all
                .iter()
                .flat_map(|c| &c.orders)
                .all(|o| o.ordered_on <= today));
        }
    }

    #[test]
    fn check_characters() {
        // Known-valid codes from ident.rs's table.
        assert_eq!(
            with_uscc_check("91350100M000100Y4").as_deref(),
            Some("91350100M000100Y43")
        );
        assert_eq!(
            with_uscc_check("91440300708461136").as_deref(),
            Some("91440300708461136T")
        );
        assert_eq!(org_code_check("M000100Y"), Some('4'));
        assert_eq!(org_code_check("70846113"), Some('6'));
        assert_eq!(with_uscc_check("9135010OM000100Y4"), None);
    }

    #[test]
    fn codes_continue_after_existing_ones() {
        let floors = code_floors([
            "C2024001",
            "C2025017",
            "C20251234",
            "X2025999",
            "C2025",
            "C20260AB",
        ]);
        assert_eq!(floors, BTreeMap::from([(2024, 1), (2025, 1234)]));
        let mut cfg = config(5, ymd(2025, 6, 30), 2000);
        cfg.code_floors = floors;
        for c in DemoGenerator::new(cfg).skip(2) {
            let year: i32 = c.code()[1..5].parse().expect("year");
            let n: u64 = c.code()[5..].parse().expect("number");
            match year {
                2024 => assert!(n >= 3, "{}", c.code()),
                2025 => assert!(n > 1234, "{}", c.code()),
                _ => {}
            }
        }
    }

    #[test]
    fn taken_usccs_are_not_reused() {
        let today = ymd(2025, 6, 30);
        let first: Vec<DemoCustomer> = DemoGenerator::new(config(8, today, 50)).collect();
        let taken: HashSet<String> = first.iter().filter_map(|c| c.data.uscc.clone()).collect();
        assert!(!taken.is_empty());
        let mut cfg = config(8, today, 50);
        cfg.taken_usccs = taken.clone();
        assert!(DemoGenerator::new(cfg).all(|c| c.data.uscc.is_none_or(|u| !taken.contains(&u))));
    }

    #[test]
    fn realistic_mix() {
        let today = ymd(2025, 6, 30);
        let all: Vec<DemoCustomer> = DemoGenerator::new(config(42, today, 5000)).collect();
        let n = all.len();
        let manufacturing = all
            .iter()
            .filter(|c| c.data.industry.as_deref() == Some("制造业"))
            .count();
        let with_uscc = all.iter().filter(|c| c.data.uscc.is_some()).count();
        let complainers = all
            .iter()
            .filter(|c| {
                c.interactions
                    .iter()
                    .any(|i| i.data.kind == InteractionKind::Complaint)
            })
            .count();
        let orders: usize = all.iter().map(|c| c.orders.len()).sum();
        let contacts: usize = all.iter().map(|c| c.contacts.len()).sum();
        let interactions: usize = all.iter().map(|c| c.interactions.len()).sum();
        assert!(
            manufacturing * 100 / n >= 20,
            "制造业 is the largest industry"
        );
        assert!(with_uscc * 100 / n >= 50, "most customers have a USCC");
        assert!(
            (5..=25).contains(&(complainers * 100 / n)),
            "some complaints: {complainers}"
        );
        assert!(
            (15..=25).contains(&(orders / n)),
            "orders per customer: {}",
            orders as f64 / n as f64
        );
        assert!((1..=3).contains(&(contacts / n)));
        assert!(
            (2..=5).contains(&(interactions / n)),
            "interactions per customer: {}",
            interactions as f64 / n as f64
        );
        for status in CustomerStatus::ALL {
            assert!(all.iter().any(|c| c.data.status == status), "{status:?}");
        }
    }
}
