//! Segments at bitmap speed: a [`SegmentIndex`] of every customer's tags,
//! classes and segment fields as roaring bitmaps (and dense columns for
//! numbers and dates), kept in step with the database by the change feed.
//!
//! *Invariant*: before answering, the index applies every feed entry after
//! the one it was read at, so a query sees every committed write (each
//! write appends to the feed in its own transaction). Nothing lives only
//! here: a restart reads it again, a second server keeps its own.

use crate::error::ApiError;
use chrono::NaiveDate;
use kehu_core::classify::Facts;
use kehu_core::crosssell::{self, Buyers, Facet, FacetKind, Group};
use kehu_core::segment::{
    evaluate, range_holds, Atom, AtomSource, Plan, SegmentFieldKind, SEGMENT_FIELDS,
};
use kehu_core::segment::{reads_windows, Compiled};
use kehu_core::tags::TagMode;
use kehu_store::feed::FeedSpan;
use kehu_store::segments::{FieldRow, FieldValue};
use kehu_store::tags::{RuleChanges, RuleWrite};
use kehu_store::{ScopeFilter, Store};
use roaring::RoaringBitmap;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tokio::sync::Mutex;

/// Customers per read while loading everyone.
const LOAD_BATCH: i64 = 100_000;
/// Past this many changed customers a catch-up reads everything again.
const CATCH_UP_MAX: usize = 20_000;

/// The values of one text-like column: a code per customer and the
/// customers of each value.
#[derive(Default)]
struct Categorical {
    code_of: HashMap<String, u32>,
    /// Value per code (index 0 unused).
    names: Vec<String>,
    /// Code per customer id; 0 = none.
    codes: Vec<u32>,
    /// Customers per code (index 0 unused).
    sets: Vec<RoaringBitmap>,
}

impl Categorical {
    fn set(&mut self, id: u32, value: Option<&str>) {
        let i = id as usize;
        if self.codes.len() <= i {
            self.codes.resize(i + 1, 0);
        }
        let old = self.codes[i];
        if old != 0 {
            self.sets[old as usize].remove(id);
        }
        let new = match value {
            None => 0,
            Some(v) => match self.code_of.get(v) {
                Some(&c) => c,
                None => {
                    if self.sets.is_empty() {
                        self.sets.push(RoaringBitmap::new());
                        self.names.push(String::new());
                    }
                    let c = self.sets.len() as u32;
                    self.sets.push(RoaringBitmap::new());
                    self.names.push(v.to_string());
                    self.code_of.insert(v.to_string(), c);
                    c
                }
            },
        };
        if new != 0 {
            self.sets[new as usize].insert(id);
        }
        self.codes[i] = new;
    }

    fn customers(&self, value: &str) -> Option<&RoaringBitmap> {
        self.code_of.get(value).map(|&c| &self.sets[c as usize])
    }

    /// A customer's value.
    fn value_of(&self, id: u32) -> Option<&str> {
        match self.codes.get(id as usize).copied().unwrap_or(0) {
            0 => None,
            c => self.names.get(c as usize).map(String::as_str),
        }
    }

    /// Every value with its customers (values nobody has any more too).
    fn values(&self) -> impl Iterator<Item = (&str, &RoaringBitmap)> {
        self.names
            .iter()
            .zip(&self.sets)
            .skip(1)
            .map(|(n, s)| (n.as_str(), s))
    }
}

/// Marks a missing number in a dense column.
const MISSING: i64 = i64::MIN;

/// Every customer's tags, classes and segment fields.
pub struct SegmentIndex {
    live: RoaringBitmap,
    tags: HashMap<i64, RoaringBitmap>,
    classes: HashMap<String, Categorical>,
    /// Per text field of [`SEGMENT_FIELDS`], by key.
    text: HashMap<&'static str, Categorical>,
    /// Per number or date field, a value per customer id.
    numbers: HashMap<&'static str, Vec<i64>>,
    /// Customers by owner (user id as text): the data scopes own and team.
    owners: Categorical,
    /// The feed entry this index has applied up to.
    mark: i64,
    /// Feed entries of this process's own rule writes, already applied here.
    own: Vec<FeedSpan>,
    /// Unions of tag subtrees asked for, until a tag changes.
    unions: std::sync::Mutex<HashMap<Vec<i64>, RoaringBitmap>>,
    /// The day the windowed aggregates were computed for (None: not yet;
    /// they are computed when a segment first reads one).
    windows: Option<NaiveDate>,
    /// Who bought each product line, in the 12 months up to `windows` and
    /// ever (computed with the windows).
    products: BTreeMap<String, Buyers>,
}

fn small_id(id: i64) -> Result<u32, ApiError> {
    u32::try_from(id)
        .map_err(|_| ApiError::Internal(format!("customer id {id} is beyond the segment index")))
}

impl SegmentIndex {
    fn empty(mark: i64) -> SegmentIndex {
        SegmentIndex {
            live: RoaringBitmap::new(),
            tags: HashMap::new(),
            classes: HashMap::new(),
            text: HashMap::new(),
            numbers: HashMap::new(),
            owners: Categorical::default(),
            mark,
            own: Vec::new(),
            unions: std::sync::Mutex::new(HashMap::new()),
            windows: None,
            products: BTreeMap::new(),
        }
    }

    /// Reads every customer's fields, classes and tags.
    pub async fn load(store: &Store) -> Result<SegmentIndex, ApiError> {
        // The mark first: whatever commits while we read is applied again
        // at the next catch-up (applying is idempotent).
        let mut idx = SegmentIndex::empty(store.feed_head().await?);
        let max = store.max_customer_id().await?;
        let mut first = 1;
        while first <= max {
            let last = first + LOAD_BATCH - 1;
            for row in store.field_rows_between(first, last).await? {
                idx.set_fields(&row)?;
            }
            let classes = store
                .classes_between(first, last, |c, s, k| (c, s.to_string(), k.to_string()))
                .await?;
            for (c, s, k) in classes {
                idx.set_class(small_id(c)?, &s, Some(&k));
            }
            for (c, t) in store.tag_pairs_between(first, last).await? {
                idx.tags.entry(t).or_default().insert(small_id(c)?);
            }
            first = last + 1;
        }
        for (c, t) in store.rule_tag_pairs().await? {
            idx.tags.entry(t).or_default().insert(small_id(c)?);
        }
        Ok(idx)
    }

    fn set_fields(&mut self, row: &FieldRow) -> Result<(), ApiError> {
        let id = small_id(row.id)?;
        self.live.insert(id);
        let columns = SEGMENT_FIELDS.iter().filter(|f| f.window.is_none());
        for (f, v) in columns.zip(&row.values) {
            match (f.kind, v) {
                (SegmentFieldKind::Text, FieldValue::Text(t)) => {
                    self.text.entry(f.key).or_default().set(id, Some(t))
                }
                (SegmentFieldKind::Text, _) => self.text.entry(f.key).or_default().set(id, None),
                (_, value) => {
                    let col = self.numbers.entry(f.key).or_default();
                    if col.len() <= id as usize {
                        col.resize(id as usize + 1, MISSING);
                    }
                    let n = match value {
                        FieldValue::Num(n) => Some(*n),
                        _ => None,
                    };
                    col[id as usize] = n.unwrap_or(MISSING);
                    if f.key == "owner_id" {
                        self.owners.set(id, n.map(|o| o.to_string()).as_deref());
                    }
                }
            }
        }
        Ok(())
    }

    fn set_class(&mut self, id: u32, scheme: &str, class: Option<&str>) {
        self.classes
            .entry(scheme.to_string())
            .or_default()
            .set(id, class);
    }

    /// The customers carrying any of `tags` (a subtree), kept until a tag changes.
    fn union_of(&self, tags: &[i64]) -> RoaringBitmap {
        let mut cache = self.unions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(u) = cache.get(tags) {
            return u.clone();
        }
        let mut out = RoaringBitmap::new();
        for t in tags {
            if let Some(b) = self.tags.get(t) {
                out |= b;
            }
        }
        cache.insert(tags.to_vec(), out.clone());
        out
    }

    /// Who carries `tag`, with a run's changes not yet stored.
    fn carriers(&self, tag: i64, overlay: &TagOverlay) -> Cow<'_, RoaringBitmap> {
        let stored = self.tags.get(&tag);
        match overlay.get(&tag) {
            None => stored.map_or_else(|| Cow::Owned(RoaringBitmap::new()), Cow::Borrowed),
            Some((add, remove)) => Cow::Owned((stored.cloned().unwrap_or_default() | add) - remove),
        }
    }

    /// After any change to who carries a tag.
    fn tags_changed(&mut self) {
        self.unions
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Every customer's windowed aggregates as of `today`, from the fact digests.
    async fn load_windows(&mut self, store: &Store, today: NaiveDate) -> Result<(), ApiError> {
        // Everyone's buying is read again for the new day.
        self.products.clear();
        let mut after = 0;
        loop {
            let batch = store.facts_after(after, LOAD_BATCH).await?;
            let Some(last) = batch.last().map(|f| f.customer_id) else {
                break;
            };
            for f in &batch {
                self.set_windows(f, today)?;
            }
            after = last;
        }
        self.windows = Some(today);
        Ok(())
    }

    /// A customer's windowed aggregates and product buyers as of `today`
    /// (after `forget_products` when the customer was in the index already).
    fn set_windows(&mut self, f: &Facts, today: NaiveDate) -> Result<(), ApiError> {
        let customer = small_id(f.customer_id)?;
        crosssell::record_buying(&mut self.products, customer, &f.orders, today);
        let id = customer as usize;
        for field in SEGMENT_FIELDS {
            if let Some(w) = field.window {
                let col = self.numbers.entry(field.key).or_default();
                if col.len() <= id {
                    col.resize(id + 1, MISSING);
                }
                col[id] = w.value(f, today);
            }
        }
        Ok(())
    }

    /// Forgets a customer entirely (deleted).
    fn remove(&mut self, id: u32) {
        self.live.remove(id);
        self.owners.set(id, None);
        for t in self.text.values_mut() {
            t.set(id, None);
        }
        for col in self.numbers.values_mut() {
            if let Some(v) = col.get_mut(id as usize) {
                *v = MISSING;
            }
        }
        for c in self.classes.values_mut() {
            c.set(id, None);
        }
        for t in self.tags.values_mut() {
            t.remove(id);
        }
        self.forget_products(id);
    }

    /// Takes a customer out of every product's buyers.
    fn forget_products(&mut self, id: u32) {
        for b in self.products.values_mut() {
            b.recent.remove(id);
            b.ever.remove(id);
        }
    }

    /// Applies what changed since the mark; false when so much changed
    /// that reading everything again is the better way.
    async fn catch_up(&mut self, store: &Store) -> Result<bool, ApiError> {
        let Some(read) = store
            .catch_up_reads(self.mark, &self.own, CATCH_UP_MAX, self.windows.is_some())
            .await?
        else {
            return Ok(false);
        };
        let (facts, tags) = (&read.facts_of, &read.tags_of);
        // A changed customer with no field row is gone.
        let present: std::collections::HashSet<i64> = read.fields.iter().map(|r| r.id).collect();
        for &id in facts {
            if !present.contains(&id) {
                self.remove(small_id(id)?);
            }
        }
        for r in &read.fields {
            self.set_fields(r)?;
        }
        if let Some(day) = self.windows {
            for f in &read.facts {
                self.forget_products(small_id(f.customer_id)?);
                self.set_windows(f, day)?;
            }
        }
        for &id in &read.classes_of {
            let id = small_id(id)?;
            for c in self.classes.values_mut() {
                c.set(id, None);
            }
        }
        for (c, s, k) in &read.classes {
            self.set_class(small_id(*c)?, s, Some(k));
        }
        for &id in tags {
            let id = small_id(id)?;
            for t in self.tags.values_mut() {
                t.remove(id);
            }
        }
        for &(c, t) in &read.tags {
            self.tags.entry(t).or_default().insert(small_id(c)?);
        }
        if !tags.is_empty() || !facts.is_empty() {
            // Tags changed, or a deleted customer left them.
            self.tags_changed();
        }
        self.mark = read.last;
        self.own.retain(|s| s.last > read.last);
        Ok(true)
    }

    /// The customers a reader with `scope` may see.
    pub fn scope(&self, scope: &ScopeFilter) -> RoaringBitmap {
        let owner = |user: i64| -> RoaringBitmap {
            self.owners
                .customers(&user.to_string())
                .cloned()
                .unwrap_or_default()
        };
        match scope {
            ScopeFilter::All => self.live.clone(),
            ScopeFilter::Own { user_id }
            | ScopeFilter::Team {
                team: None,
                user_id,
            } => owner(*user_id) & &self.live,
            ScopeFilter::Team {
                team: Some(t),
                user_id,
            } => {
                let mut s = owner(*user_id);
                if let Some(team) = self.text.get("team").and_then(|c| c.customers(t)) {
                    s |= team;
                }
                s & &self.live
            }
        }
    }

    /// What a rule saw for one customer: its stored text and the value of
    /// everything it reads (a hybrid proposal's evidence).
    fn evidence(&self, id: u32, plan: &Plan, stable: &str, overlay: &TagOverlay) -> String {
        let mut parts: Vec<String> = Vec::new();
        for atom in plan.atoms() {
            let part = match atom {
                Atom::Tag { tag, tags } => {
                    let has = tags.iter().any(|&t| self.carriers(t, overlay).contains(id));
                    format!("#{tag}={}", u8::from(has))
                }
                Atom::Class { scheme, .. } => {
                    let class = self.classes.get(scheme).and_then(|c| c.value_of(id));
                    format!("{scheme}={}", class.unwrap_or("-"))
                }
                Atom::Text { field, .. } => {
                    let v = self.text.get(field).and_then(|c| c.value_of(id));
                    format!("{field}={}", v.unwrap_or("-"))
                }
                Atom::Range { field, .. } => {
                    let v = self
                        .numbers
                        .get(field)
                        .and_then(|c| c.get(id as usize))
                        .copied();
                    let shown = match v {
                        None | Some(MISSING) => "-".to_string(),
                        Some(n) => match kehu_core::segment::segment_field(field).map(|f| f.kind) {
                            Some(SegmentFieldKind::Date) => kehu_core::segment::day_date(n)
                                .map_or(n.to_string(), |d| d.to_string()),
                            _ => n.to_string(),
                        },
                    };
                    format!("{field}={shown}")
                }
            };
            if !parts.contains(&part) {
                parts.push(part);
            }
        }
        format!("{stable} | {}", parts.join("; "))
    }

    /// Customers carrying each tag (by tag id), for counts.
    pub fn tag_counts(&self) -> HashMap<i64, u64> {
        self.tags
            .iter()
            .map(|(&t, b)| (t, (b & &self.live).len()))
            .collect()
    }

    /// Where a facet's values live: the scheme's classes, the industry
    /// field, the size scheme's classes.
    fn facet_column<'a>(
        &'a self,
        kind: FacetKind,
        scheme: &'a str,
    ) -> Option<(&'a str, &'a Categorical)> {
        let (field, column) = match kind {
            FacetKind::Class => (scheme, self.classes.get(scheme)),
            FacetKind::Industry => ("industry", self.text.get("industry")),
            FacetKind::Size => (SIZE_SCHEME, self.classes.get(SIZE_SCHEME)),
        };
        column.map(|c| (field, c))
    }

    /// The facets one customer has, with everyone sharing each.
    fn facets_of(&self, id: u32, scheme: &str) -> Vec<(Facet, RoaringBitmap)> {
        FACETS
            .into_iter()
            .filter_map(|kind| {
                let (field, column) = self.facet_column(kind, scheme)?;
                let value = column.value_of(id)?;
                let members = column.customers(value)?.clone();
                Some((facet(kind, field, value), members))
            })
            .collect()
    }

    /// Every value of one facet, with its customers.
    fn facet_values(&self, kind: FacetKind, scheme: &str) -> Vec<(Facet, RoaringBitmap)> {
        self.facet_column(kind, scheme)
            .map(|(field, column)| {
                column
                    .values()
                    .filter(|(_, set)| !set.is_empty())
                    .map(|(value, set)| (facet(kind, field, value), set.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A number column's value for one customer; 0 when missing.
    fn number(&self, field: &str, id: u32) -> i64 {
        match self.numbers.get(field).and_then(|c| c.get(id as usize)) {
            Some(&n) if n != MISSING => n,
            _ => 0,
        }
    }
}

/// The scheme whose classes are a customer's size (大型/中型/小型).
const SIZE_SCHEME: &str = "industry_size";
const FACETS: [FacetKind; 3] = [FacetKind::Class, FacetKind::Industry, FacetKind::Size];

fn facet(kind: FacetKind, field: &str, value: &str) -> Facet {
    Facet {
        kind,
        field: field.to_string(),
        value: value.to_string(),
    }
}

/// A plan evaluated against the index within one reader's universe.
struct Scoped<'a> {
    index: &'a SegmentIndex,
    universe: RoaringBitmap,
    /// A run of the tag rules: the earlier rules' changes, not yet stored.
    overlay: Option<&'a TagOverlay>,
}

/// By tag, the customers a run of the tag rules gave it and took it from.
type TagOverlay = HashMap<i64, (RoaringBitmap, RoaringBitmap)>;

impl AtomSource for Scoped<'_> {
    fn universe(&self) -> &RoaringBitmap {
        &self.universe
    }

    fn atom(&self, atom: &Atom) -> Cow<'_, RoaringBitmap> {
        let idx = self.index;
        match atom {
            Atom::Tag { tags, .. } => {
                if let Some(o) = self
                    .overlay
                    .filter(|o| tags.iter().any(|t| o.contains_key(t)))
                {
                    return Cow::Owned(tags.iter().fold(RoaringBitmap::new(), |acc, &t| {
                        acc | idx.carriers(t, o).as_ref()
                    }));
                }
                match tags.as_slice() {
                    [one] => idx
                        .tags
                        .get(one)
                        .map_or_else(|| Cow::Owned(RoaringBitmap::new()), Cow::Borrowed),
                    many => Cow::Owned(idx.union_of(many)),
                }
            }
            Atom::Class { scheme, class } => idx
                .classes
                .get(scheme)
                .and_then(|c| c.customers(class))
                .map_or_else(|| Cow::Owned(RoaringBitmap::new()), Cow::Borrowed),
            Atom::Text { field, values } => {
                let Some(col) = idx.text.get(field) else {
                    return Cow::Owned(RoaringBitmap::new());
                };
                match values.as_slice() {
                    [one] => col
                        .customers(one)
                        .map_or_else(|| Cow::Owned(RoaringBitmap::new()), Cow::Borrowed),
                    many => Cow::Owned(
                        many.iter()
                            .filter_map(|v| col.customers(v))
                            .fold(RoaringBitmap::new(), |acc, b| acc | b),
                    ),
                }
            }
            Atom::Range { field, op, value } => {
                let Some(col) = idx.numbers.get(field) else {
                    return Cow::Owned(RoaringBitmap::new());
                };
                Cow::Owned(
                    col.iter()
                        .enumerate()
                        .filter(|(_, &v)| v != MISSING && range_holds(*op, v, *value))
                        .map(|(i, _)| i as u32)
                        .collect(),
                )
            }
        }
    }

    /// Numbers and dates are a column lookup per customer: inside an AND,
    /// only the candidates left are tested instead of scanning everyone.
    fn filterable(&self, atom: &Atom) -> bool {
        matches!(atom, Atom::Range { .. })
    }

    fn filter(&self, atom: &Atom, candidates: &RoaringBitmap) -> RoaringBitmap {
        let Atom::Range { field, op, value } = atom else {
            return candidates & self.atom(atom).as_ref();
        };
        let Some(col) = self.index.numbers.get(field) else {
            return RoaringBitmap::new();
        };
        RoaringBitmap::from_sorted_iter(candidates.iter().filter(|&id| {
            col.get(id as usize)
                .is_some_and(|&v| v != MISSING && range_holds(*op, v, *value))
        }))
        .unwrap_or_default()
    }
}

/// How many customers a segment holds for a reader, and a page of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentAnswer {
    pub count: u64,
    /// Customer ids after the requested one, in id order.
    pub page: Vec<i64>,
    /// The id to ask after for the next page.
    pub next_after: Option<i64>,
}

/// The index of this server process, loaded on first use and caught up
/// before every answer.
#[derive(Clone)]
pub struct Segments {
    store: Store,
    index: Arc<Mutex<Option<SegmentIndex>>>,
}

impl Segments {
    pub fn new(store: Store) -> Segments {
        Segments {
            store,
            index: Arc::new(Mutex::new(None)),
        }
    }

    /// Runs `f` on an index that has seen every committed write.
    async fn with_index<T>(&self, f: impl FnOnce(&SegmentIndex) -> T) -> Result<T, ApiError> {
        self.with_index_for(None, f).await
    }

    /// [`with_index`](Self::with_index) for `plan`: with today's windowed
    /// aggregates computed first when the plan reads any.
    async fn with_index_for<T>(
        &self,
        plan: Option<&Plan>,
        f: impl FnOnce(&SegmentIndex) -> T,
    ) -> Result<T, ApiError> {
        self.with_index_windows(plan.is_some_and(reads_windows), f)
            .await
    }

    /// [`with_index`](Self::with_index), with today's windowed aggregates
    /// computed first when `windows`.
    async fn with_index_windows<T>(
        &self,
        windows: bool,
        f: impl FnOnce(&SegmentIndex) -> T,
    ) -> Result<T, ApiError> {
        let mut slot = self.index.lock().await;
        let current = match slot.as_mut() {
            Some(idx) => idx.catch_up(&self.store).await?,
            None => false,
        };
        if !current {
            *slot = None; // freed before the new one is read
            *slot = Some(SegmentIndex::load(&self.store).await?);
        }
        let idx = slot
            .as_mut()
            .ok_or_else(|| ApiError::Internal("segment index missing".into()))?;
        let today = self.store.today();
        if windows && idx.windows != Some(today) {
            idx.load_windows(&self.store, today).await?;
        }
        Ok(f(idx))
    }

    /// With today's windowed aggregates and product buyers computed.
    async fn with_windows<T>(&self, f: impl FnOnce(&SegmentIndex) -> T) -> Result<T, ApiError> {
        // A plan that reads a window makes the index compute them.
        let windows = Plan::Atom(Atom::Range {
            field: "purchase_30d_fen",
            op: kehu_core::expr::CmpOp::Ge,
            value: 0,
        });
        self.with_index_for(Some(&windows), f).await
    }

    /// Loads the index now (at start, so the first query is fast).
    pub async fn warm(&self) -> Result<(), ApiError> {
        self.with_windows(|_| ()).await
    }

    /// Whether today's windows and product buyers are in memory (answers
    /// that read them come without a load). False while another request
    /// holds the index.
    pub fn windows_ready(&self, today: NaiveDate) -> bool {
        self.index
            .try_lock()
            .is_ok_and(|slot| slot.as_ref().is_some_and(|idx| idx.windows == Some(today)))
    }

    /// A customer's peers in `scheme` (those of class, industry and size
    /// among `kinds`; widened when too few), the products they buy that it
    /// never bought, and the peers most like it among those `visible` to
    /// the reader.
    pub async fn cross_sell(
        &self,
        customer: i64,
        scheme: &str,
        min_share: i64,
        limit: usize,
        visible: &ScopeFilter,
        kinds: &[FacetKind],
    ) -> Result<crate::crosssell::Peers, ApiError> {
        let id = small_id(customer)?;
        self.with_windows(|idx| {
            let mut facets = idx.facets_of(id, scheme);
            facets.retain(|(f, _)| kinds.contains(&f.kind));
            let (group, widened) = crosssell::peer_group(id, &facets, &idx.live);
            let suggestions =
                crosssell::suggestions(id, &group, &idx.products, &idx.live, min_share);
            let seen = Group {
                members: &group.members & &idx.scope(visible),
                facets: group.facets.clone(),
            };
            let buying = |c: u32| crosssell::Buying {
                purchase_12m_fen: idx.number("purchase_12m_fen", c),
                orders: idx.number("order_count", c),
            };
            let similar = crosssell::similar(id, &seen, &idx.products, buying, limit);
            crate::crosssell::Peers {
                group,
                widened,
                suggestions,
                similar,
            }
        })
        .await
    }

    /// The population's size and, per product, its customers (None:
    /// everyone) who never bought it and are in a class × industry × size group of
    /// `scheme` (over everyone) where at least `min_share` buy it: as of
    /// today, or of a past day's buying and classes (`then`; industries
    /// are today's, the only ones kept).
    pub async fn opportunities(
        &self,
        scheme: &str,
        population: Option<&RoaringBitmap>,
        min_share: i64,
        then: Option<&BuyingThen>,
    ) -> Result<(u64, Vec<(crosssell::Opportunity, RoaringBitmap)>), ApiError> {
        let find = |idx: &SegmentIndex| {
            let everyone = match then {
                Some(t) => &t.existing & &idx.live,
                None => idx.live.clone(),
            };
            let population = population.map_or_else(|| everyone.clone(), |p| p & &everyone);
            let today;
            let (classes, sizes, products) = match then {
                Some(t) => (&t.classes, &t.sizes, &t.products),
                None => {
                    today =
                        [FacetKind::Class, FacetKind::Size].map(|k| idx.facet_values(k, scheme));
                    (&today[0], &today[1], &idx.products)
                }
            };
            let industries = idx.facet_values(FacetKind::Industry, scheme);
            let groups = crosssell::groups(classes, &industries, sizes, &everyone);
            let found = crosssell::opportunities(&population, &groups, products, min_share);
            (population.len(), found)
        };
        match then {
            Some(_) => self.with_index(find).await,
            None => self.with_windows(find).await,
        }
    }

    /// The customers in `scope` that `plan` holds for: the count, and up to
    /// `limit` ids above `after`.
    pub async fn query(
        &self,
        plan: &Plan,
        scope: &ScopeFilter,
        after: i64,
        limit: usize,
    ) -> Result<SegmentAnswer, ApiError> {
        self.with_index_for(Some(plan), |idx| {
            let scoped = Scoped {
                universe: idx.scope(scope),
                index: idx,
                overlay: None,
            };
            let hits = evaluate(plan, &scoped);
            let mut page: Vec<i64> = Vec::with_capacity(limit);
            let mut more = false;
            for id in hits.iter().skip_while(|&id| i64::from(id) <= after) {
                if page.len() == limit {
                    more = true;
                    break;
                }
                page.push(i64::from(id));
            }
            let next_after = if more { page.last().copied() } else { None };
            SegmentAnswer {
                count: hits.len(),
                page,
                next_after,
            }
        })
        .await
    }

    /// Applies a rule or hybrid tag's compiled rule to the customers among
    /// `only` (everyone when None): a rule tag gets exactly the customers
    /// its rule holds for; a hybrid tag's rule proposes the ones that hold
    /// and do not carry it, and withdraws pending proposals that no longer
    /// hold.
    pub async fn apply_rule(
        &self,
        tag_id: i64,
        mode: TagMode,
        rule: &Compiled,
        only: Option<&[i64]>,
    ) -> Result<RuleChanges, ApiError> {
        let mut runs = self.run_rules(&[(tag_id, mode, rule)], only).await?;
        Ok(runs.pop().map(|(_, c)| c).unwrap_or_default())
    }

    /// [`apply_rule`](Self::apply_rule) for every rule of a book in order:
    /// a later rule sees the earlier ones' changes, and all of them are
    /// stored in one transaction (one data change, one commit).
    pub async fn apply_rules(
        &self,
        book: &[(i64, TagMode, Compiled)],
        only: Option<&[i64]>,
    ) -> Result<Vec<(i64, RuleChanges)>, ApiError> {
        let book: Vec<(i64, TagMode, &Compiled)> = book
            .iter()
            .map(|(id, mode, rule)| (*id, *mode, rule))
            .collect();
        self.run_rules(&book, only).await
    }

    async fn run_rules(
        &self,
        book: &[(i64, TagMode, &Compiled)],
        only: Option<&[i64]>,
    ) -> Result<Vec<(i64, RuleChanges)>, ApiError> {
        let only_set: Option<RoaringBitmap> = only.map(|ids| {
            ids.iter()
                .filter_map(|&id| u32::try_from(id).ok())
                .collect()
        });
        let hybrids: Vec<i64> = book
            .iter()
            .filter(|(_, mode, _)| *mode == TagMode::Hybrid)
            .map(|(id, ..)| *id)
            .collect();
        let pending = self.store.pending_proposals(&hybrids, only).await?;
        let windows = book.iter().any(|(.., rule)| reads_windows(&rule.plan));
        let (writes, overlay) = self
            .with_index_windows(windows, |idx| {
                let universe = match &only_set {
                    Some(o) => o & &idx.live,
                    None => idx.live.clone(),
                };
                let mut overlay = TagOverlay::new();
                let mut writes = Vec::new();
                for &(tag_id, mode, rule) in book {
                    let scoped = Scoped {
                        index: idx,
                        universe: universe.clone(),
                        overlay: Some(&overlay),
                    };
                    let desired = evaluate(&rule.plan, &scoped);
                    let current = idx.carriers(tag_id, &overlay).as_ref() & &universe;
                    if mode == TagMode::Hybrid {
                        let proposals: Vec<(i64, String)> = (&desired - &current)
                            .iter()
                            .map(|id| {
                                let seen = idx.evidence(id, &rule.plan, &rule.stable, &overlay);
                                (i64::from(id), seen)
                            })
                            .collect();
                        let expire: Vec<i64> = pending
                            .iter()
                            .filter(|&&(t, c)| {
                                t == tag_id && u32::try_from(c).is_ok_and(|c| !desired.contains(c))
                            })
                            .map(|&(_, c)| c)
                            .collect();
                        if !proposals.is_empty() || !expire.is_empty() {
                            writes.push(RuleWrite::Proposals {
                                tag_id,
                                proposals,
                                expire,
                            });
                        }
                        continue;
                    }
                    let add = &desired - &current;
                    let remove = &current - &desired;
                    if !add.is_empty() || !remove.is_empty() {
                        writes.push(RuleWrite::Members {
                            tag_id,
                            add: add.iter().map(i64::from).collect(),
                            remove: remove.iter().map(i64::from).collect(),
                        });
                        overlay.insert(tag_id, (add, remove));
                    }
                }
                (writes, overlay)
            })
            .await?;
        let mut counts: HashMap<i64, RuleChanges> = HashMap::new();
        if !writes.is_empty() {
            let (stored, span) = self.store.apply_rule_writes(&writes).await?;
            self.applied(&overlay, span).await;
            counts.extend(writes.iter().map(RuleWrite::tag_id).zip(stored));
        }
        Ok(book
            .iter()
            .map(|&(id, ..)| (id, counts.remove(&id).unwrap_or_default()))
            .collect())
    }

    /// Takes a rule tag off everyone (its rule was removed).
    pub async fn clear_rule_tag(&self, tag_id: i64) -> Result<(), ApiError> {
        let gone: RoaringBitmap = self
            .with_index(|idx| idx.tags.get(&tag_id).cloned().unwrap_or_default())
            .await?;
        if !gone.is_empty() {
            let write = RuleWrite::Members {
                tag_id,
                add: Vec::new(),
                remove: gone.iter().map(i64::from).collect(),
            };
            let (_, span) = self.store.apply_rule_writes(&[write]).await?;
            let overlay = TagOverlay::from([(tag_id, (RoaringBitmap::new(), gone))]);
            self.applied(&overlay, span).await;
        }
        Ok(())
    }

    /// After this process stored rule changes (`overlay`, by tag: who got
    /// it, who lost it): the index takes them now and skips their feed
    /// entries (a rule changing thousands of customers would otherwise
    /// read as "anyone changed" and reload it).
    async fn applied(&self, overlay: &TagOverlay, span: Option<FeedSpan>) {
        let mut slot = self.index.lock().await;
        if let (Some(idx), Some(span)) = (slot.as_mut(), span) {
            if span.last > idx.mark {
                for (tag_id, (add, remove)) in overlay {
                    let set = idx.tags.entry(*tag_id).or_default();
                    *set |= add;
                    *set -= remove;
                }
                idx.own.push(span);
                idx.tags_changed();
            }
        }
    }

    /// Each tag's behaviour (its subtree's customers against everyone) at
    /// an instant: share, buying again (`repeat_buyers`) and satisfaction
    /// (`scores`). `since` are the assignments changed from that instant to
    /// now, oldest first (undone here, so the tags are those carried then).
    pub async fn tag_behaviour(
        &self,
        subtrees: &[(i64, Vec<i64>)],
        behaviour: TagBehaviourInput<'_>,
        scope: &ScopeFilter,
    ) -> Result<(u64, Vec<(i64, kehu_core::tag_stats::TagBehaviour)>), ApiError> {
        let scores: Vec<(u32, f64)> = behaviour
            .scores
            .iter()
            .filter_map(|&(c, s)| u32::try_from(c).ok().map(|c| (c, s)))
            .collect();
        let repurchased: RoaringBitmap = behaviour
            .repeat_buyers
            .iter()
            .filter_map(|&c| u32::try_from(c).ok())
            .collect();
        self.with_index(|idx| {
            // The customers the reader may see: everyone's figures are not theirs to read.
            let universe = match scope {
                ScopeFilter::All => idx.live.clone(),
                narrower => idx.scope(narrower) & &idx.live,
            };
            let mut then: HashMap<i64, RoaringBitmap> = HashMap::new();
            for &(tag, customer, added) in behaviour.since.iter().rev() {
                let Ok(customer) = u32::try_from(customer) else {
                    continue;
                };
                let set = then
                    .entry(tag)
                    .or_insert_with(|| idx.tags.get(&tag).cloned().unwrap_or_default());
                if added {
                    set.remove(customer);
                } else {
                    set.insert(customer);
                }
            }
            let rows = subtrees
                .iter()
                .map(|(tag, tree)| {
                    let mut tagged = RoaringBitmap::new();
                    for t in tree {
                        if let Some(b) = then.get(t).or_else(|| idx.tags.get(t)) {
                            tagged |= b;
                        }
                    }
                    let b = kehu_core::tag_stats::tag_behaviour(
                        &tagged,
                        &universe,
                        &repurchased,
                        &scores,
                    );
                    (*tag, b)
                })
                .collect::<Vec<_>>();
            (universe.len(), rows)
        })
        .await
    }

    /// Every customer in `scope` that `plan` holds for, in id order.
    pub async fn ids(&self, plan: &Plan, scope: &ScopeFilter) -> Result<Vec<i64>, ApiError> {
        Ok(self
            .id_set(plan, scope)
            .await?
            .iter()
            .map(i64::from)
            .collect())
    }

    /// The customers of a plan within `scope`, as a set.
    pub async fn id_set(
        &self,
        plan: &Plan,
        scope: &ScopeFilter,
    ) -> Result<RoaringBitmap, ApiError> {
        self.with_index_for(Some(plan), |idx| {
            evaluate(
                plan,
                &Scoped {
                    universe: idx.scope(scope),
                    index: idx,
                    overlay: None,
                },
            )
        })
        .await
    }

    /// Every live customer within `scope`.
    pub async fn scope_ids(&self, scope: &ScopeFilter) -> Result<RoaringBitmap, ApiError> {
        self.with_index(|idx| idx.scope(scope)).await
    }

    /// Customers of `scope` per class of `scheme` (unclassified left out).
    pub async fn class_counts(
        &self,
        scheme: &str,
        scope: &ScopeFilter,
    ) -> Result<HashMap<String, u64>, ApiError> {
        self.with_index(|idx| {
            let universe = idx.scope(scope);
            idx.classes
                .get(scheme)
                .map(|c| {
                    c.values()
                        .map(|(class, set)| (class.to_string(), set.intersection_len(&universe)))
                        .filter(|(_, n)| *n > 0)
                        .collect()
                })
                .unwrap_or_default()
        })
        .await
    }

    /// Customers of `scope` whose number `field` is known and below `limit`.
    pub async fn count_below(
        &self,
        field: &str,
        limit: i64,
        scope: &ScopeFilter,
    ) -> Result<u64, ApiError> {
        self.with_index(|idx| {
            let universe = idx.scope(scope);
            idx.numbers.get(field).map_or(0, |col| {
                universe
                    .iter()
                    .filter(|&id| {
                        col.get(id as usize)
                            .is_some_and(|&v| v != MISSING && v < limit)
                    })
                    .count() as u64
            })
        })
        .await
    }

    /// Customers per tag id (live customers only).
    pub async fn tag_counts(&self) -> Result<HashMap<i64, u64>, ApiError> {
        self.with_index(SegmentIndex::tag_counts).await
    }
}

/// What tag behaviour is measured with.
pub struct TagBehaviourInput<'a> {
    /// (customer, mean satisfaction) for those with a score.
    pub scores: &'a [(i64, f64)],
    /// The customers who bought again.
    pub repeat_buyers: &'a [i64],
    /// Assignments changed since the instant measured, oldest first: (tag, customer, added).
    pub since: &'a [(i64, i64, bool)],
}

/// A past day's buying and classes, read from the store for cross-selling
/// as of that day (the index holds today's).
pub struct BuyingThen {
    /// The customers that existed by the end of the day.
    pub existing: RoaringBitmap,
    pub products: BTreeMap<String, Buyers>,
    /// The scheme's classes and the sizes (`industry_size`) on that day.
    pub classes: Vec<(Facet, RoaringBitmap)>,
    pub sizes: Vec<(Facet, RoaringBitmap)>,
}

impl BuyingThen {
    /// Reads who bought what by the end of `as_of` and the classes of
    /// `scheme` and the sizes then, from the fact digests and the class history.
    pub async fn read(store: &Store, scheme: &str, as_of: NaiveDate) -> Result<Self, ApiError> {
        let day_after = as_of.succ_opt().unwrap_or(as_of);
        let ends_at = crate::tasks::to_utc(day_after.and_time(chrono::NaiveTime::MIN));
        let (existing, products) = store.buying_as_of(as_of, ends_at).await?;
        let classes = class_facets(store, FacetKind::Class, scheme, as_of).await?;
        let sizes = class_facets(store, FacetKind::Size, SIZE_SCHEME, as_of).await?;
        Ok(BuyingThen {
            existing: existing
                .into_iter()
                .filter_map(|c| u32::try_from(c).ok())
                .collect(),
            products,
            classes,
            sizes,
        })
    }
}

/// The classes of scheme `key` on `as_of` as facets of `kind`, each with its customers.
async fn class_facets(
    store: &Store,
    kind: FacetKind,
    key: &str,
    as_of: NaiveDate,
) -> Result<Vec<(Facet, RoaringBitmap)>, ApiError> {
    let mut by_class: BTreeMap<String, RoaringBitmap> = BTreeMap::new();
    for (customer, class) in store.classes_on(key, as_of).await? {
        if let Ok(id) = u32::try_from(customer) {
            by_class.entry(class).or_default().insert(id);
        }
    }
    Ok(by_class
        .into_iter()
        .map(|(class, set)| (facet(kind, key, &class), set))
        .collect())
}
