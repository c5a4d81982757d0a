//! Tags: a catalogue of up to four levels (dimension › feature › detail,
//! and one level of sub-detail such as 基础标签 › 细分行业 › IT服务业 › 云计算),
//! the naming rules, synonyms, and tree moves that never make a cycle.
//!
//! A tag is referred to by its name when that is unique, by a path
//! (`消费频次/高频`, any unique tail of the full path) otherwise, and inside
//! stored expressions by `#ID`, which survives renames and merges.

use crate::error::{Reason, ValidationErrors};
use crate::text::clean;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Deepest level of the catalogue.
pub const MAX_DEPTH: usize = 4;
/// Longest tag name, in characters.
pub const NAME_MAX: usize = 20;
/// Separator of tag paths (never part of a name).
pub const PATH_SEPARATOR: char = '/';
/// Default limit of hand-assigned tags per customer.
pub const DEFAULT_MAX_MANUAL_TAGS: u32 = 5;

/// How a tag gets onto customers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum TagMode {
    /// Assigned by people (a "custom tag": counts against the per-customer limit).
    Manual,
    /// Assigned by its rule.
    Rule,
    /// Proposed by its rule, confirmed by a person.
    Hybrid,
}

impl TagMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TagMode::Manual => "manual",
            TagMode::Rule => "rule",
            TagMode::Hybrid => "hybrid",
        }
    }
    pub fn parse(s: &str) -> Result<TagMode, Reason> {
        match s {
            "manual" => Ok(TagMode::Manual),
            "rule" => Ok(TagMode::Rule),
            "hybrid" => Ok(TagMode::Hybrid),
            _ => Err(Reason::UnknownOption {
                allowed: vec!["manual".into(), "rule".into(), "hybrid".into()],
            }),
        }
    }
}

/// One tag of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagNode {
    pub id: i64,
    pub parent_id: Option<i64>,
    pub name: String,
    pub mode: TagMode,
    pub retired: bool,
    /// Set when this tag was merged into another: references follow it.
    pub merged_into: Option<i64>,
}

/// Words of the segment language that cannot be tag names.
const RESERVED: &[&str] = &["and", "or", "not", "in", "且", "并且", "或", "或者", "非"];

/// Characters a name may hold besides letters and digits (every one of
/// them a word character of the expression language, so a name needs no quotes).
const NAME_PUNCTUATION: &[char] = &['-', '_', '·', '&', '+', '.', '%'];

/// A tag name as typed → the stored name: cleaned (full-width to
/// half-width, trimmed), 1–20 letters, digits or `- _ · & + . %`, not a
/// keyword of the segment language, not starting with `#`.
pub fn parse_tag_name(raw: &str) -> Result<String, Reason> {
    let name = clean(raw);
    if name.is_empty() {
        return Err(Reason::Required);
    }
    if name.chars().count() > NAME_MAX {
        return Err(Reason::TooLong { max: NAME_MAX });
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_alphanumeric() || NAME_PUNCTUATION.contains(c)))
    {
        return Err(Reason::Rule {
            code: "tag_name_character",
            zh: format!("标签名不能包含“{bad}”：只能用汉字、字母、数字和 - _ · & + . %"),
            en: format!(
                "a tag name cannot contain “{bad}”: only letters, digits and - _ · & + . %"
            ),
        });
    }
    if RESERVED.contains(&name.to_lowercase().as_str()) {
        return Err(Reason::Rule {
            code: "tag_name_reserved",
            zh: format!("“{name}”是查询语言的关键字，不能作标签名"),
            en: format!("“{name}” is a keyword of the query language and cannot be a tag name"),
        });
    }
    Ok(name)
}

/// The form names are compared in (case-insensitive for Latin letters).
pub fn name_key(name: &str) -> String {
    clean(name).to_lowercase()
}

/// Groups of names that mean the same thing: a tag cannot get a name
/// whose synonym a sibling already has (工业 when 制造业 exists).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Synonyms(pub Vec<Vec<String>>);

impl Synonyms {
    /// The preset groups.
    pub fn preset() -> Synonyms {
        let groups: &[&[&str]] = &[
            &["制造业", "工业", "制造", "生产制造"],
            &["零售业", "零售", "批发零售"],
            &["服务业", "服务"],
            &["金融", "金融业"],
            &["IT服务业", "IT服务", "信息技术", "信息服务"],
            &["医疗健康", "医疗", "医药"],
            &["高频", "频繁"],
            &["低频", "偶尔"],
            &["投诉", "客诉"],
        ];
        Synonyms(
            groups
                .iter()
                .map(|g| g.iter().map(|s| s.to_string()).collect())
                .collect(),
        )
    }

    /// Checks groups as an admin typed them: each name a valid tag name,
    /// at least two per group, no name in two groups.
    pub fn validate(groups: Vec<Vec<String>>) -> Result<Synonyms, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::with_capacity(groups.len());
        for (g, group) in groups.into_iter().enumerate() {
            let mut names = Vec::new();
            for (i, raw) in group.iter().enumerate() {
                let field = format!("synonyms[{g}][{i}]");
                let Some(name) = errors.check(&field, parse_tag_name(raw)) else {
                    continue;
                };
                match seen.insert(name_key(&name), g) {
                    Some(other) if other != g => errors.push(
                        field,
                        Reason::Rule {
                            code: "synonym_in_two_groups",
                            zh: format!("“{name}”已在第 {} 组同义词中", other + 1),
                            en: format!("“{name}” is already in synonym group {}", other + 1),
                        },
                    ),
                    Some(_) => {} // repeated within its own group: harmless
                    None => names.push(name),
                }
            }
            if names.len() < 2 && !group.is_empty() {
                errors.push(
                    format!("synonyms[{g}]"),
                    Reason::Rule {
                        code: "synonym_group_too_small",
                        zh: "每组同义词至少要有两个不同的名称".into(),
                        en: "a synonym group needs at least two different names".into(),
                    },
                );
            }
            out.push(names);
        }
        errors.into_result().map(|_| Synonyms(out))
    }

    /// The names that mean the same as `name` (itself included), compared by [`name_key`].
    fn same_as(&self, name: &str) -> Vec<String> {
        let key = name_key(name);
        let mut out = vec![key.clone()];
        for g in &self.0 {
            if g.iter().any(|n| name_key(n) == key) {
                out.extend(g.iter().map(|n| name_key(n)));
            }
        }
        out
    }
}

/// Why a reference to a tag does not name exactly one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    NotFound,
    /// Several tags answer to it: their full paths.
    Ambiguous(Vec<String>),
}

/// The whole tag tree, for naming checks, paths and references.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    nodes: BTreeMap<i64, TagNode>,
    children: HashMap<Option<i64>, Vec<i64>>,
}

impl Catalogue {
    pub fn new(nodes: impl IntoIterator<Item = TagNode>) -> Catalogue {
        let mut c = Catalogue::default();
        for n in nodes {
            c.children.entry(n.parent_id).or_default().push(n.id);
            c.nodes.insert(n.id, n);
        }
        for kids in c.children.values_mut() {
            kids.sort_unstable();
        }
        c
    }

    pub fn get(&self, id: i64) -> Option<&TagNode> {
        self.nodes.get(&id)
    }

    pub fn nodes(&self) -> impl Iterator<Item = &TagNode> {
        self.nodes.values()
    }

    /// The tag a reference lands on: itself, or where it was merged into.
    pub fn current(&self, mut id: i64) -> Option<i64> {
        for _ in 0..=self.nodes.len() {
            match self.nodes.get(&id)?.merged_into {
                Some(next) => id = next,
                None => return Some(id),
            }
        }
        None // a merge cycle cannot be written; refuse rather than loop
    }

    /// The names from the root down to `id`.
    pub fn path(&self, id: i64) -> Vec<&str> {
        let mut out = Vec::new();
        let mut at = Some(id);
        while let Some(n) = at.and_then(|i| self.nodes.get(&i)) {
            out.push(n.name.as_str());
            at = n.parent_id;
            if out.len() > self.nodes.len() {
                break;
            }
        }
        out.reverse();
        out
    }

    pub fn path_text(&self, id: i64) -> String {
        self.path(id).join(&PATH_SEPARATOR.to_string())
    }

    /// 1 for a dimension, 2 for a feature, …
    pub fn depth(&self, id: i64) -> usize {
        self.path(id).len()
    }

    /// `id` and everything below it (merged tags left out: they hold nothing).
    pub fn subtree(&self, id: i64) -> Vec<i64> {
        let mut out = vec![id];
        let mut i = 0;
        while i < out.len() {
            if let Some(kids) = self.children.get(&Some(out[i])) {
                out.extend(
                    kids.iter()
                        .filter(|k| self.nodes.get(k).is_some_and(|n| n.merged_into.is_none())),
                );
            }
            i += 1;
        }
        out
    }

    /// How deep the subtree below `id` goes (1 = no children).
    fn height(&self, id: i64) -> usize {
        let below = self
            .children
            .get(&Some(id))
            .map(|kids| kids.iter().map(|&k| self.height(k)).max().unwrap_or(0))
            .unwrap_or(0);
        below + 1
    }

    /// The live (not merged) children of `parent`.
    pub fn children_of(&self, parent: Option<i64>) -> impl Iterator<Item = &TagNode> {
        self.children
            .get(&parent)
            .into_iter()
            .flatten()
            .filter_map(|id| self.nodes.get(id))
            .filter(|n| n.merged_into.is_none())
    }

    /// The tag a reference names: `#ID`, a full path, a unique tail of a
    /// path (`消费频次/高频`) or a unique name. Merged tags resolve to where
    /// they went.
    pub fn resolve(&self, reference: &str) -> Result<i64, Unresolved> {
        let r = clean(reference);
        if let Some(id) = r.strip_prefix('#').and_then(|d| d.parse::<i64>().ok()) {
            return self.current(id).ok_or(Unresolved::NotFound);
        }
        let wanted: Vec<String> = r
            .split(PATH_SEPARATOR)
            .map(name_key)
            .filter(|s| !s.is_empty())
            .collect();
        if wanted.is_empty() {
            return Err(Unresolved::NotFound);
        }
        let matches: Vec<i64> = self
            .nodes
            .values()
            .filter(|n| n.merged_into.is_none())
            .filter(|n| {
                let path = self.path(n.id);
                path.len() >= wanted.len()
                    && path[path.len() - wanted.len()..]
                        .iter()
                        .zip(&wanted)
                        .all(|(have, want)| name_key(have) == *want)
            })
            .map(|n| n.id)
            .collect();
        match matches.as_slice() {
            [] => Err(Unresolved::NotFound),
            [one] => Ok(*one),
            many => {
                // A full path wins over tails that happen to match it.
                let full: Vec<i64> = many
                    .iter()
                    .copied()
                    .filter(|&id| self.depth(id) == wanted.len())
                    .collect();
                if let [one] = full.as_slice() {
                    return Ok(*one);
                }
                Err(Unresolved::Ambiguous(
                    many.iter().map(|&id| self.path_text(id)).collect(),
                ))
            }
        }
    }

    /// The shortest reference that names `id` alone (its name, else a
    /// longer tail of its path).
    pub fn shortest_reference(&self, id: i64) -> String {
        let path = self.path(id);
        for take in 1..=path.len() {
            let tail = path[path.len() - take..].join(&PATH_SEPARATOR.to_string());
            if self.resolve(&tail) == Ok(id) {
                return tail;
            }
        }
        format!("#{id}")
    }

    /// Checks a name for a tag under `parent` (the tag itself is `this`
    /// when renaming): unique among its siblings, and no sibling carries a
    /// synonym of it.
    pub fn check_name(
        &self,
        parent: Option<i64>,
        name: &str,
        this: Option<i64>,
        synonyms: &Synonyms,
    ) -> Result<(), Reason> {
        let key = name_key(name);
        let same = synonyms.same_as(name);
        for sibling in self.children_of(parent).filter(|n| Some(n.id) != this) {
            let sk = name_key(&sibling.name);
            if sk == key {
                return Err(Reason::Rule {
                    code: "tag_name_taken",
                    zh: format!("同一上级下已有标签“{}”", self.path_text(sibling.id)),
                    en: format!(
                        "a tag “{}” already exists under the same parent",
                        self.path_text(sibling.id)
                    ),
                });
            }
            if same.contains(&sk) {
                return Err(Reason::Rule {
                    code: "tag_name_synonym",
                    zh: format!(
                        "“{name}”与已有标签“{}”是同义词，请使用已有标签",
                        self.path_text(sibling.id)
                    ),
                    en: format!(
                        "“{name}” is a synonym of the existing tag “{}”: use that one",
                        self.path_text(sibling.id)
                    ),
                });
            }
        }
        Ok(())
    }

    /// Checks that `id` may sit under `parent`: the parent exists and is
    /// live, is not the tag itself or below it, and the result is at most
    /// [`MAX_DEPTH`] levels deep.
    pub fn check_parent(&self, id: Option<i64>, parent: Option<i64>) -> Result<(), Reason> {
        let Some(p) = parent else {
            return Ok(());
        };
        let node = self.nodes.get(&p).ok_or(Reason::Rule {
            code: "tag_parent_unknown",
            zh: format!("上级标签 #{p} 不存在"),
            en: format!("the parent tag #{p} does not exist"),
        })?;
        if node.merged_into.is_some() || node.retired {
            return Err(Reason::Rule {
                code: "tag_parent_retired",
                zh: format!("上级标签“{}”已停用或已合并", self.path_text(p)),
                en: format!(
                    "the parent tag “{}” is retired or merged",
                    self.path_text(p)
                ),
            });
        }
        if let Some(id) = id {
            if self.subtree(id).contains(&p) {
                return Err(Reason::Rule {
                    code: "tag_cycle",
                    zh: format!(
                        "不能把“{}”移到它自己或它的下级“{}”之下",
                        self.path_text(id),
                        self.path_text(p)
                    ),
                    en: format!(
                        "cannot move “{}” under itself or its descendant “{}”",
                        self.path_text(id),
                        self.path_text(p)
                    ),
                });
            }
        }
        let height = id.map_or(1, |i| self.height(i));
        if self.depth(p) + height > MAX_DEPTH {
            return Err(Reason::Rule {
                code: "tag_too_deep",
                zh: format!("标签层级最多 {MAX_DEPTH} 级（维度 › 特征 › 细分）"),
                en: format!(
                    "tags are at most {MAX_DEPTH} levels deep (dimension › feature › detail)"
                ),
            });
        }
        Ok(())
    }
}

/// The order to apply tag rules in, each after the rule tags it reads
/// (`reads`: rule tag → the tags its condition reads, subtrees included);
/// Err with the tags of a cycle (a rule reading its own tag counts).
pub fn rule_order(reads: &BTreeMap<i64, BTreeSet<i64>>) -> Result<Vec<i64>, Vec<i64>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        t: i64,
        reads: &BTreeMap<i64, BTreeSet<i64>>,
        marks: &mut BTreeMap<i64, Mark>,
        path: &mut Vec<i64>,
        out: &mut Vec<i64>,
    ) -> Result<(), Vec<i64>> {
        match marks.get(&t).copied().unwrap_or(Mark::New) {
            Mark::Done => return Ok(()),
            Mark::Open => {
                let from = path.iter().position(|&p| p == t).unwrap_or(0);
                return Err(path[from..].to_vec());
            }
            Mark::New => {}
        }
        marks.insert(t, Mark::Open);
        path.push(t);
        for &dep in reads.get(&t).into_iter().flatten() {
            if reads.contains_key(&dep) {
                visit(dep, reads, marks, path, out)?;
            }
        }
        path.pop();
        marks.insert(t, Mark::Done);
        out.push(t);
        Ok(())
    }
    let mut marks = BTreeMap::new();
    let mut out = Vec::with_capacity(reads.len());
    for &t in reads.keys() {
        visit(t, reads, &mut marks, &mut Vec::new(), &mut out)?;
    }
    Ok(out)
}

/// The preset catalogue, one path per line, parents before children;
/// every leaf is manual unless marked `=rule` (assigned by its rule, given
/// after a colon when it ships with one).
pub const PRESET_CATALOGUE: &str = "\
基础标签
基础标签/细分行业
基础标签/细分行业/IT服务业
基础标签/细分行业/IT服务业/云计算
基础标签/细分行业/IT服务业/软件开发
基础标签/细分行业/IT服务业/系统集成
基础标签/细分行业/制造业
基础标签/细分行业/制造业/汽车零部件
基础标签/细分行业/制造业/电子元器件
基础标签/细分行业/制造业/机械设备
基础标签/企业性质
基础标签/企业性质/国有企业
基础标签/企业性质/民营企业
基础标签/企业性质/外资企业
基础标签/企业性质/上市公司
行为标签
行为标签/消费频次
行为标签/消费频次/高频=rule
行为标签/消费频次/中频=rule
行为标签/消费频次/低频=rule
行为标签/访问频次
行为标签/访问频次/高频=rule
行为标签/访问频次/低频=rule
行为标签/活动参与
行为标签/活动参与/展会到访
行为标签/活动参与/线上研讨会
价值标签
价值标签/高端客户=rule:年采购额 >= 100万
价值标签/中端客户=rule:年采购额 >= 50万 AND 年采购额 < 100万
价值标签/低端客户=rule:年采购额 < 50万
需求标签
需求标签/价格敏感
需求标签/重视服务
需求标签/定制需求
需求标签/新品试用
风险标签
风险标签/付款延迟
风险标签/竞品接触
风险标签/决策人变动
";

/// A tag of the preset catalogue.
pub struct PresetTag {
    pub path: Vec<&'static str>,
    pub mode: TagMode,
    pub rule: Option<&'static str>,
}

/// The tags of the preset catalogue, parents first.
pub fn preset_catalogue() -> impl Iterator<Item = PresetTag> {
    PRESET_CATALOGUE.lines().filter(|l| !l.is_empty()).map(|l| {
        let (path, mode, rule) = match l.split_once("=rule") {
            Some((p, rest)) => (p, TagMode::Rule, rest.strip_prefix(':')),
            None => (l, TagMode::Manual, None),
        };
        PresetTag {
            path: path.split(PATH_SEPARATOR).collect(),
            mode,
            rule,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: i64, parent: Option<i64>, name: &str) -> TagNode {
        TagNode {
            id,
            parent_id: parent,
            name: name.into(),
            mode: TagMode::Manual,
            retired: false,
            merged_into: None,
        }
    }

    /// 1 行为标签 › 2 消费频次 › 3 高频; 1 › 4 访问频次 › 5 高频; 6 基础标签 › 7 细分行业 › 8 制造业 › 9 汽车零部件
    fn sample() -> Catalogue {
        Catalogue::new([
            node(1, None, "行为标签"),
            node(2, Some(1), "消费频次"),
            node(3, Some(2), "高频"),
            node(4, Some(1), "访问频次"),
            node(5, Some(4), "高频"),
            node(6, None, "基础标签"),
            node(7, Some(6), "细分行业"),
            node(8, Some(7), "制造业"),
            node(9, Some(8), "汽车零部件"),
        ])
    }

    #[test]
    fn names_are_checked() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("高频", Ok("高频")),
            ("  ＶＩＰ客户 ", Ok("VIP客户")),
            ("B2B-大客户", Ok("B2B-大客户")),
            ("", Err("required")),
            ("   ", Err("required")),
            (
                "一二三四五六七八九十一二三四五六七八九十",
                Ok("一二三四五六七八九十一二三四五六七八九十"),
            ),
            (
                "一二三四五六七八九十一二三四五六七八九十一",
                Err("too_long"),
            ),
            ("高 频", Err("tag_name_character")),
            ("a/b", Err("tag_name_character")),
            ("#12", Err("tag_name_character")),
            ("x(y)", Err("tag_name_character")),
            ("a=b", Err("tag_name_character")),
            ("AND", Err("tag_name_reserved")),
            ("或", Err("tag_name_reserved")),
        ];
        for (raw, want) in cases {
            let got = parse_tag_name(raw);
            match want {
                Ok(name) => assert_eq!(got.as_deref(), Ok(*name), "{raw:?}"),
                Err(code) => assert_eq!(got.map_err(|r| r.code()), Err(*code), "{raw:?}"),
            }
        }
    }

    #[test]
    fn references_resolve_by_name_tail_path_or_id() {
        let c = sample();
        let cases: &[(&str, Result<i64, &str>)] = &[
            ("汽车零部件", Ok(9)),
            ("制造业/汽车零部件", Ok(9)),
            ("基础标签/细分行业/制造业/汽车零部件", Ok(9)),
            ("消费频次/高频", Ok(3)),
            ("访问频次/高频", Ok(5)),
            ("高频", Err("ambiguous")),
            ("行为标签", Ok(1)),
            ("#5", Ok(5)),
            ("#99", Err("not_found")),
            ("低频", Err("not_found")),
            ("消费频次/低频", Err("not_found")),
        ];
        for (r, want) in cases {
            let got = c.resolve(r).map_err(|e| match e {
                Unresolved::NotFound => "not_found",
                Unresolved::Ambiguous(_) => "ambiguous",
            });
            assert_eq!(got, *want, "{r}");
        }
        assert_eq!(c.shortest_reference(9), "汽车零部件");
        assert_eq!(c.shortest_reference(3), "消费频次/高频");
    }

    #[test]
    fn merged_tags_resolve_to_their_target() {
        let mut nodes: Vec<TagNode> = sample().nodes().cloned().collect();
        nodes[4].merged_into = Some(3); // 访问频次/高频 → 消费频次/高频
        let c = Catalogue::new(nodes);
        assert_eq!(c.resolve("#5"), Ok(3));
        assert_eq!(
            c.resolve("高频"),
            Ok(3),
            "the merged one no longer competes"
        );
        assert_eq!(c.subtree(4), vec![4]);
    }

    #[test]
    fn subtree_holds_every_descendant() {
        let c = sample();
        let mut s = c.subtree(6);
        s.sort();
        assert_eq!(s, vec![6, 7, 8, 9]);
        assert_eq!(c.subtree(9), vec![9]);
    }

    #[test]
    fn siblings_unique_and_synonyms_blocked() {
        let c = sample();
        let syn = Synonyms::preset();
        let code = |r: Result<(), Reason>| r.map_err(|e| e.code());
        assert_eq!(
            code(c.check_name(Some(7), "工业", None, &syn)),
            Err("tag_name_synonym")
        );
        assert_eq!(
            code(c.check_name(Some(7), "制造业", None, &syn)),
            Err("tag_name_taken")
        );
        assert_eq!(code(c.check_name(Some(7), "零售业", None, &syn)), Ok(()));
        // Elsewhere in the tree the same name is fine.
        assert_eq!(code(c.check_name(Some(1), "制造业", None, &syn)), Ok(()));
        // Renaming a tag to its own name (or its case) is no collision.
        assert_eq!(code(c.check_name(Some(7), "制造业", Some(8), &syn)), Ok(()));
        assert_eq!(
            code(c.check_name(Some(2), "频繁", None, &syn)),
            Err("tag_name_synonym")
        );
    }

    #[test]
    fn moves_never_make_cycles_or_go_too_deep() {
        let c = sample();
        let code = |r: Result<(), Reason>| r.map_err(|e| e.code());
        assert_eq!(code(c.check_parent(Some(6), Some(9))), Err("tag_cycle"));
        assert_eq!(code(c.check_parent(Some(6), Some(6))), Err("tag_cycle"));
        assert_eq!(
            code(c.check_parent(Some(7), Some(2))),
            Err("tag_too_deep"),
            "7 carries two levels below it"
        );
        assert_eq!(code(c.check_parent(Some(7), Some(1))), Ok(()));
        assert_eq!(code(c.check_parent(None, Some(9))), Err("tag_too_deep"));
        assert_eq!(code(c.check_parent(None, Some(8))), Ok(()));
        assert_eq!(code(c.check_parent(Some(3), Some(4))), Ok(()));
        assert_eq!(
            code(c.check_parent(None, Some(42))),
            Err("tag_parent_unknown")
        );
    }

    #[test]
    fn synonym_groups_are_validated() {
        assert!(Synonyms::validate(vec![vec!["制造业".into(), "工业".into()]]).is_ok());
        let e = Synonyms::validate(vec![
            vec!["制造业".into(), "工业".into()],
            vec!["工业".into(), "重工".into()],
            vec!["独自".into()],
        ])
        .expect_err("bad groups");
        let codes: Vec<(&str, &str)> =
            e.0.iter()
                .map(|f| (f.field.as_str(), f.reason.code()))
                .collect();
        assert!(
            codes.contains(&("synonyms[1][0]", "synonym_in_two_groups")),
            "{codes:?}"
        );
        assert!(
            codes.contains(&("synonyms[2]", "synonym_group_too_small")),
            "{codes:?}"
        );
    }

    #[test]
    fn preset_catalogue_is_valid() {
        let mut nodes: Vec<TagNode> = Vec::new();
        let syn = Synonyms::preset();
        for (i, PresetTag { path, mode, rule }) in preset_catalogue().enumerate() {
            assert_eq!(
                rule.is_some(),
                path[0] == "价值标签" && path.len() == 2,
                "{path:?}"
            );
            let c = Catalogue::new(nodes.clone());
            let parent = match path.len() {
                1 => None,
                _ => Some(
                    c.resolve(&path[..path.len() - 1].join("/"))
                        .expect("parent first"),
                ),
            };
            let name = parse_tag_name(path[path.len() - 1]).expect("name");
            c.check_name(parent, &name, None, &syn).expect("unique");
            c.check_parent(None, parent).expect("depth");
            nodes.push(TagNode {
                mode,
                ..node(i as i64 + 1, parent, &name)
            });
        }
        assert!(nodes.len() > 30);
    }

    #[test]
    fn rules_apply_after_what_they_read_and_never_in_a_cycle() {
        let reads = |pairs: &[(i64, &[i64])]| -> BTreeMap<i64, BTreeSet<i64>> {
            pairs
                .iter()
                .map(|(t, r)| (*t, r.iter().copied().collect()))
                .collect()
        };
        // 3 reads 2, 2 reads 1 and a manual tag 9: 1, 2, 3.
        assert_eq!(
            rule_order(&reads(&[(3, &[2]), (2, &[1, 9]), (1, &[])])),
            Ok(vec![1, 2, 3])
        );
        assert_eq!(
            rule_order(&reads(&[(1, &[2]), (2, &[3]), (3, &[1])])),
            Err(vec![1, 2, 3])
        );
        assert_eq!(
            rule_order(&reads(&[(4, &[4])])),
            Err(vec![4]),
            "a rule reading its own tag"
        );
    }
}
