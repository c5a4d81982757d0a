//! The classification service: runs the published scheme versions over the
//! stored customers and stores what changed. One engine for every path —
//! `kehu classify`, the daily job, publishing a version, re-evaluating one
//! customer after their data changed, and simulating a draft — so they can
//! never disagree.
//!
//! A run reads customers in batches and computes every change first, then
//! writes them in one short transaction (with whatever belongs with them,
//! such as publishing the version that caused them): nothing half-applied,
//! and SQLite's one write lock is held for the write only.

use crate::error::ApiError;
use chrono::NaiveDate;
use kehu_core::classify::metric::Metric;
use kehu_core::classify::overrides::OverrideData;
use kehu_core::classify::presets::class_catalog;
use kehu_core::classify::value::Value;
use kehu_core::classify::{
    evaluation_order, Binding, Catalog, ClassContext, Facts, MetricTable, Population, Scheme,
    SchemeSpec, SetEvaluator, Verdict,
};
use kehu_core::{FieldError, Reason, ValidationErrors};
use kehu_store::classes::{cause, one_customer_inputs_with, ClassChange, ClassWriter, Stored};
use kehu_store::feed::{Changed, FeedSpan};
use kehu_store::overrides::{ClassOverride, NewOverride, OverridesByCustomer};
use kehu_store::schemes::RulesStamp;
use kehu_store::Opened;
use kehu_store::{Store, StoreError};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::sync::{Arc, RwLock};

mod grid;
use grid::{ClassGrid, ClassNames};

/// Customers read per batch, and decided per batch.
pub const BATCH: i64 = 5_000;

/// What a run is doing, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading customers and measuring their metrics.
    Reading,
    /// Deciding classes and comparing them with the stored ones.
    Deciding,
}

/// Called with the phase and how many more customers went through it.
pub type Progress<'a> = &'a (dyn Fn(Phase, u64) + Sync);

/// Compiled schemes in evaluation order (each after the schemes it reads),
/// with the version each was compiled from.
#[derive(Debug, Clone)]
pub struct SchemeSet {
    pub schemes: Vec<Scheme>,
    pub versions: Vec<i64>,
}

impl SchemeSet {
    /// Each scheme's key, name and classes: what segment expressions may name.
    pub fn vocabulary(&self) -> Vec<kehu_core::segment::SchemeClasses> {
        self.schemes
            .iter()
            .map(|s| kehu_core::segment::SchemeClasses {
                key: s.key.clone(),
                name: s.spec.name.clone(),
                classes: s.class_keys(),
            })
            .collect()
    }

    /// Compiles `(version, spec)` pairs against the database's custom fields.
    /// Errors name the scheme and the place in it (`value_tier.dimensions[0].weight`).
    pub fn compile(
        specs: &[(i64, SchemeSpec)],
        custom: &[kehu_core::custom_field::CustomFieldDef],
    ) -> Result<SchemeSet, ApiError> {
        let plain: Vec<SchemeSpec> = specs.iter().map(|(_, s)| s.clone()).collect();
        let classes = class_catalog(&plain);
        let mut compiled = Vec::with_capacity(specs.len());
        let mut errors = Vec::new();
        for (_, spec) in specs {
            let catalog = Catalog {
                custom_fields: custom,
                schemes: Some(&classes),
            };
            match Scheme::compile(spec, catalog) {
                Ok(s) => compiled.push(s),
                Err(e) => errors.extend(e.0.into_iter().map(|f| FieldError {
                    field: format!("{}.{}", spec.key, f.field),
                    ..f
                })),
            }
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(ValidationErrors(errors)));
        }
        let order = evaluation_order(&compiled).map_err(|cycle| {
            ApiError::Validation(ValidationErrors(vec![FieldError::new(
                "classes",
                Reason::Rule {
                    code: "scheme_cycle",
                    zh: format!("方案之间循环引用分类：{cycle}"),
                    en: format!("schemes read each other's classes in a cycle: {cycle}"),
                },
            )]))
        })?;
        Ok(SchemeSet {
            schemes: order.iter().map(|&i| compiled[i].clone()).collect(),
            versions: order.iter().map(|&i| specs[i].0).collect(),
        })
    }

    pub fn keys(&self) -> BTreeSet<String> {
        self.schemes.iter().map(|s| s.key.clone()).collect()
    }

    pub fn index(&self, key: &str) -> Option<usize> {
        self.schemes.iter().position(|s| s.key == key)
    }

    /// `keys` and every scheme they read, directly or not.
    pub fn with_inputs(&self, keys: &[String]) -> BTreeSet<String> {
        let mut keep: BTreeSet<String> = keys.iter().cloned().collect();
        for s in self.schemes.iter().rev() {
            if keep.contains(&s.key) {
                keep.extend(s.depends_on.iter().cloned());
            }
        }
        keep
    }

    /// `key` and every scheme that reads its class, directly or not.
    pub fn with_readers(&self, key: &str) -> BTreeSet<String> {
        let mut keep = BTreeSet::from([key.to_string()]);
        for s in &self.schemes {
            if s.depends_on.iter().any(|d| keep.contains(d)) {
                keep.insert(s.key.clone());
            }
        }
        keep
    }
}

/// The class a run gave one customer in one scheme.
pub struct Outcome<'a> {
    pub customer_id: i64,
    pub code: &'a str,
    pub scheme: &'a Scheme,
    pub population: &'a Population,
    pub class: &'a str,
    /// The stored class before this run.
    pub before: Option<&'a str>,
    pub score: Option<i64>,
    /// The rules' verdict; None when an override set the class.
    pub verdict: Option<Verdict>,
    pub context: ClassContext<'a>,
}

/// What a run found.
#[derive(Debug, Default)]
pub struct RunResult {
    pub customers: u64,
    /// Customers whose data this run read and measured: everyone, or,
    /// when the server kept everyone's metrics, those whose data changed.
    pub measured: u64,
    /// Class counts per evaluated scheme (evaluation order).
    pub counts: Vec<(String, BTreeMap<String, u64>)>,
    pub changes: Vec<ClassChange>,
}

/// One scheme's explanation for one customer.
pub struct Explained {
    pub version: i64,
    /// The scheme's classes (what an override may choose).
    pub classes: Vec<String>,
    /// The class in force (the override's, if one is active).
    pub class: String,
    pub active_override: Option<ClassOverride>,
    pub explanation: kehu_core::classify::Explanation,
}

/// Which customers and schemes a run covers.
pub struct RunPlan<'a> {
    pub set: &'a SchemeSet,
    /// Per scheme of the set: whether this run evaluates it (else its
    /// stored class stands and is what other schemes read).
    pub evaluated: Vec<bool>,
    /// Per scheme: the population its percentile indicators rank against.
    /// None: ranked over the customers this run reads (a run over everyone).
    pub populations: Option<Vec<Arc<Population>>>,
    pub as_of: NaiveDate,
    /// The cause recorded for changes the rules make.
    pub cause: &'static str,
    pub only: Option<i64>,
    /// An override being set or lifted in the same transaction as this run's changes.
    pub adjust: Option<OverrideEdit>,
}

impl<'a> RunPlan<'a> {
    /// Every customer, the schemes `targets` of `set`, populations ranked
    /// over everyone as of the day.
    pub fn over(
        set: &'a SchemeSet,
        targets: &BTreeSet<String>,
        as_of: NaiveDate,
        cause: &'static str,
    ) -> RunPlan<'a> {
        RunPlan {
            set,
            evaluated: set
                .schemes
                .iter()
                .map(|s| targets.contains(&s.key))
                .collect(),
            populations: None,
            as_of,
            cause,
            only: None,
            adjust: None,
        }
    }

    /// The evaluator of the schemes this plan evaluates.
    fn evaluator(&self) -> SetEvaluator<'a> {
        SetEvaluator::new(
            self.set
                .schemes
                .iter()
                .zip(&self.evaluated)
                .map(|(s, &e)| e.then_some(s)),
            self.as_of,
        )
    }

    /// Every customer, every scheme of `set`.
    pub fn everyone(set: &'a SchemeSet, as_of: NaiveDate, cause: &'static str) -> RunPlan<'a> {
        RunPlan::over(set, &set.keys(), as_of, cause)
    }
}

/// An override about to be set or lifted: the run evaluates as if it were done.
#[derive(Debug, Clone)]
pub enum OverrideEdit {
    Set(ClassOverride),
    Lift {
        customer_id: i64,
        scheme_key: String,
    },
}

impl OverrideEdit {
    fn apply(&self, overrides: &mut OverridesByCustomer) {
        match self {
            OverrideEdit::Set(o) => {
                overrides
                    .entry(o.customer_id)
                    .or_default()
                    .insert(o.scheme_key.clone(), o.clone());
            }
            OverrideEdit::Lift {
                customer_id,
                scheme_key,
            } => {
                if let Some(m) = overrides.get_mut(customer_id) {
                    m.remove(scheme_key);
                }
            }
        }
    }
}

/// Percentile populations by scheme key.
type PopulationsByScheme = HashMap<String, Arc<Population>>;

/// Published schemes and percentile populations, kept between requests.
#[derive(Default)]
struct Cache {
    /// The compiled set and the rules stamp it was compiled at.
    set: Option<(RulesStamp, Arc<SchemeSet>)>,
    /// Populations of the published set as of a day, by scheme key.
    populations: Option<(NaiveDate, Arc<PopulationsByScheme>)>,
}

#[derive(Clone)]
pub struct Classifier {
    store: Store,
    cache: Arc<RwLock<Cache>>,
    /// Runs over everyone take turns on it.
    resident: Arc<tokio::sync::Mutex<Option<Resident>>>,
}

impl Classifier {
    pub fn new(store: Store) -> Classifier {
        Classifier {
            store,
            cache: Arc::default(),
            resident: Arc::default(),
        }
    }

    /// The published version of every scheme, compiled. Cached while the
    /// rules stamp (workflow steps, custom field definitions) is unchanged, so
    /// a publish on another server or a custom field edit is seen at the next
    /// use; a new set drops the populations ranked for the old one.
    pub async fn published(&self) -> Result<Arc<SchemeSet>, ApiError> {
        let stamp = self.store.rules_stamp().await?;
        self.published_at(stamp).await
    }

    /// [`published`](Self::published) for a rules stamp the caller has read.
    pub async fn published_at(&self, stamp: RulesStamp) -> Result<Arc<SchemeSet>, ApiError> {
        if let Some((at, set)) = self.read_cache().set.clone() {
            if at == stamp {
                return Ok(set);
            }
        }
        let set = Arc::new(self.compile_published(None).await?);
        *self.write_cache() = Cache {
            set: Some((stamp, set.clone())),
            populations: None,
        };
        Ok(set)
    }

    /// The published versions with `draft` (a version of its scheme, or a
    /// new scheme) in place of its scheme's published one.
    pub async fn compile_published(
        &self,
        draft: Option<(i64, SchemeSpec)>,
    ) -> Result<SchemeSet, ApiError> {
        let mut specs = Vec::new();
        for v in self.store.published_scheme_versions().await? {
            let spec = v.parsed_spec()?;
            if draft.as_ref().is_none_or(|(_, d)| d.key != spec.key) {
                specs.push((v.version, spec));
            }
        }
        specs.extend(draft);
        let custom = self.store.custom_field_defs().await?;
        SchemeSet::compile(&specs, &custom)
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        self.cache.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_cache(&self) -> std::sync::RwLockWriteGuard<'_, Cache> {
        self.cache.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads every customer and measures what `evaluator` needs, batch by
    /// batch: the next batch is read while this one is measured on every core.
    async fn measure_all(
        &self,
        evaluator: &SetEvaluator<'_>,
        progress: Progress<'_>,
    ) -> Result<Measured, ApiError> {
        let mut measured = Measured::new(evaluator.metrics(), evaluator.as_of());
        let read = |after: i64| {
            let store = self.store.clone();
            tokio::spawn(async move { store.facts_after(after, BATCH).await })
        };
        let mut next = read(0);
        loop {
            let batch = next
                .await
                .map_err(|e| ApiError::Internal(format!("reading customers stopped: {e}")))??;
            let Some(last) = batch.last() else { break };
            next = read(last.customer_id);
            // CPU work inline (the prefetch runs on another worker, or
            // sqlx's SQLite thread, meanwhile).
            let rows = on_all_cores(batch.len(), |range| {
                batch[range]
                    .iter()
                    .map(|f| evaluator.measure_metrics(f))
                    .collect()
            });
            for (f, values) in batch.iter().zip(rows) {
                measured.add(f, values);
            }
            progress(Phase::Reading, batch.len() as u64);
        }
        Ok(measured)
    }

    /// Evaluates the plan, calling `visit` for every (customer, scheme)
    /// evaluated, and returns the changes against the stored classes. Stores nothing.
    pub async fn evaluate(
        &self,
        plan: &RunPlan<'_>,
        visit: impl FnMut(&Outcome<'_>),
        progress: Progress<'_>,
    ) -> Result<RunResult, ApiError> {
        match plan.only {
            Some(id) => self.evaluate_one(plan, id, visit, progress).await,
            None => Ok(self.evaluate_everyone(plan, visit, progress).await?.result),
        }
    }

    /// One customer: its facts and stored classes read now.
    async fn evaluate_one(
        &self,
        plan: &RunPlan<'_>,
        customer_id: i64,
        visit: impl FnMut(&Outcome<'_>),
        progress: Progress<'_>,
    ) -> Result<RunResult, ApiError> {
        let names = ClassNames::of(plan.set);
        let codes = names.clone();
        let inputs = self
            .store
            .one_customer_inputs(customer_id, plan.as_of, move |c, s, k| codes.code(c, s, k))
            .await?;
        Ok(decide_one(plan, names, inputs, visit, progress))
    }

    /// Lets go of the resident metrics and classes (a process that will not
    /// run over everyone again gives their memory back); the next run over
    /// everyone reads them anew.
    pub async fn release_resident(&self) {
        *self.resident.lock().await = None;
    }

    /// Everyone, from the resident metrics and classes brought up to date
    /// first; the resident stays held so the caller can apply what it stores.
    async fn evaluate_everyone(
        &self,
        plan: &RunPlan<'_>,
        visit: impl FnMut(&Outcome<'_>),
        progress: Progress<'_>,
    ) -> Result<Held<'_>, ApiError> {
        let mut slot = self.resident.lock().await;
        let read = self.up_to_date(&mut slot, plan, progress).await?;
        let resident = slot.as_ref().expect("up_to_date leaves a resident");
        let overrides = self
            .store
            .overrides_between(i64::MIN, i64::MAX, plan.as_of)
            .await?;
        let (mut result, populations) = decide_everyone(
            plan,
            &plan.evaluator(),
            &resident.measured,
            &resident.grid,
            overrides,
            visit,
            progress,
        );
        result.measured = read;
        Ok(Held {
            slot,
            result,
            populations,
        })
    }

    /// Brings the resident metrics and classes up to date for `plan`:
    /// caught up from the change feed when they were measured for its day
    /// and hold its metrics and schemes, else read and measured anew.
    /// Returns how many customers were read and measured.
    async fn up_to_date(
        &self,
        slot: &mut Option<Resident>,
        plan: &RunPlan<'_>,
        progress: Progress<'_>,
    ) -> Result<u64, ApiError> {
        if let Some(r) = slot.as_mut().filter(|r| r.serves(plan)) {
            if let Some(read) = self.catch_up(r).await? {
                return Ok(read);
            }
        }
        *slot = None; // freed before the new one is read
        let fresh = self.read_resident(plan, progress).await?;
        let read = fresh.measured.table.customers() as u64;
        *slot = Some(fresh);
        Ok(read)
    }

    /// Applies what the change feed says changed and returns how many
    /// customers it measured again; None when so much changed that reading
    /// everything again is the better way.
    async fn catch_up(&self, r: &mut Resident) -> Result<Option<u64>, ApiError> {
        let read = self.store.feed_after(r.mark, &r.own).await?;
        let changed: Vec<i64> = match &read.facts {
            Changed::Everyone => return Ok(None),
            Changed::Some(ids) if ids.len() > CATCH_UP_MAX => return Ok(None),
            Changed::Some(ids) => ids.iter().copied().collect(),
            Changed::Nobody => Vec::new(),
        };
        let found = self.store.facts_in(&changed).await?;
        for f in &found {
            let values = r.measured.table.measure(f);
            r.measured.add(f, values);
        }
        // Those not found were deleted.
        for &id in &changed {
            if found.binary_search_by_key(&id, |f| f.customer_id).is_err() {
                r.measured.table.remove(id);
                r.grid.clear(id);
            }
        }
        match &read.classes {
            Changed::Nobody => {}
            Changed::Everyone => r.grid = self.read_grid(r.grid.names.as_ref().clone()).await?,
            Changed::Some(ids) => {
                let ids: Vec<i64> = ids.iter().copied().collect();
                let names = r.grid.names.clone();
                let rows = self
                    .store
                    .classes_in(&ids, move |c, s, k| names.code(c, s, k))
                    .await?;
                for &id in &ids {
                    r.grid.clear(id);
                }
                r.grid.add(rows);
            }
        }
        r.mark = read.last;
        r.own.retain(|s| s.last > read.last);
        Ok(Some(found.len() as u64))
    }

    /// Reads and measures every customer and reads every stored class
    /// (at once: the classes on another thread).
    async fn read_resident(
        &self,
        plan: &RunPlan<'_>,
        progress: Progress<'_>,
    ) -> Result<Resident, ApiError> {
        // Changes committed from here on are caught up next time.
        let mark = self.store.feed_head().await?;
        let classes = {
            let this = self.clone();
            let names = ClassNames::of(plan.set);
            tokio::spawn(async move { this.read_grid(names).await })
        };
        let everything = SetEvaluator::new(plan.set.schemes.iter().map(Some), plan.as_of);
        let measured = self.measure_all(&everything, progress).await?;
        let grid = classes
            .await
            .map_err(|e| ApiError::Internal(format!("reading classes stopped: {e}")))??;
        Ok(Resident {
            measured,
            grid,
            mark,
            own: Vec::new(),
        })
    }

    /// Every stored class, coded.
    async fn read_grid(&self, names: ClassNames) -> Result<ClassGrid, ApiError> {
        let last = self.store.max_customer_id().await?;
        let mut grid = ClassGrid::new(names);
        // Customer ids start at 1.
        let mut after = 0;
        while after < last {
            let names = grid.names.clone();
            let upto = after.saturating_add(BATCH * 10);
            let rows = self
                .store
                .classes_between(after + 1, upto, move |c, s, k| names.code(c, s, k))
                .await?;
            grid.add(rows);
            after = upto;
        }
        Ok(grid)
    }

    /// Every customer, every published scheme, as of a day, and stores the
    /// changes. With `job`, the day is claimed for that job in the same
    /// transaction; if another process claimed it first nothing is stored
    /// (and the changes returned are empty). Remembers the populations for
    /// single re-evaluations that day.
    pub async fn run_all(
        &self,
        as_of: NaiveDate,
        cause: &'static str,
        by: Option<i64>,
        job: Option<&str>,
    ) -> Result<RunResult, ApiError> {
        let set = self.published().await?;
        let plan = RunPlan::everyone(&set, as_of, cause);
        let mut held = self.evaluate_everyone(&plan, |_| {}, &|_, _| {}).await?;
        let mut writer = ClassWriter::begin(&self.store, as_of, by).await?;
        let claimed = match job {
            Some(job) => kehu_store::claim_job_day(writer.tx(), job, as_of).await?,
            None => true,
        };
        if claimed {
            writer.write(&held.result.changes).await?;
            held.stored(writer.finish().await?);
        } else {
            held.result.changes.clear();
        }
        let Held {
            result,
            populations,
            ..
        } = held;
        self.remember_populations(&set, as_of, populations);
        Ok(result)
    }

    /// Ranks every customer for the published percentile schemes as of
    /// today and keeps the result for single re-evaluations, unless that is
    /// done already; true when it ranked now.
    pub async fn rank_today(&self) -> Result<bool, ApiError> {
        let today = self.store.today();
        if self.has_populations_for(today) {
            return Ok(false);
        }
        let set = self.published().await?;
        let every = vec![true; set.schemes.len()];
        let populations = self.ranked_populations(&set, &every, today).await?;
        self.remember_populations(&set, today, populations);
        Ok(true)
    }

    /// The percentile populations of the `wanted` schemes of `set` as of a
    /// day, read and measured now — no read at all if none of them ranks;
    /// the other schemes get an empty population.
    pub async fn ranked_populations(
        &self,
        set: &SchemeSet,
        wanted: &[bool],
        as_of: NaiveDate,
    ) -> Result<Vec<Arc<Population>>, ApiError> {
        let ranking = set
            .schemes
            .iter()
            .zip(wanted)
            .map(|(s, &w)| (w && !s.ranked_sources().is_empty()).then_some(s));
        let evaluator = SetEvaluator::new(ranking, as_of);
        if evaluator.metrics().is_empty() {
            return Ok(vec![Arc::default(); set.schemes.len()]);
        }
        let measured = self.measure_all(&evaluator, &|_, _| {}).await?;
        let binding = evaluator
            .bind(&measured.table)
            .expect("a table measured for this set binds to it");
        Ok(evaluator
            .populations(&binding, &measured.table)
            .into_iter()
            .map(Arc::new)
            .collect())
    }

    /// Keeps a full run's populations for re-evaluating single customers.
    pub fn remember_populations(
        &self,
        set: &Arc<SchemeSet>,
        as_of: NaiveDate,
        populations: Vec<Arc<Population>>,
    ) {
        let mut cache = self.write_cache();
        if !cache.set.as_ref().is_some_and(|(_, s)| Arc::ptr_eq(s, set)) {
            return; // a publish came in between: these belong to the old set
        }
        let by_key = set
            .schemes
            .iter()
            .zip(populations)
            .map(|(s, p)| (s.key.clone(), p))
            .collect();
        cache.populations = Some((as_of, Arc::new(by_key)));
    }

    /// Whether populations are known for `day` (else percentile schemes
    /// keep their stored class when one customer is re-evaluated).
    pub fn has_populations_for(&self, day: NaiveDate) -> bool {
        self.read_cache()
            .populations
            .as_ref()
            .is_some_and(|(d, _)| *d == day)
    }

    /// Re-evaluates one customer today and stores the changes (cause
    /// `data_change` after a write). Schemes that rank customers use today's
    /// populations if the daily run has built them, else keep their class
    /// until it has.
    pub async fn reclassify(
        &self,
        customer_id: i64,
        cause: &'static str,
        by: Option<i64>,
    ) -> Result<Vec<ClassChange>, ApiError> {
        let set = self.published().await?;
        self.reclassify_one(set, customer_id, cause, by, None).await
    }

    /// Sets an override and stores the class it gives (and the classes of
    /// schemes that read it) in one transaction.
    pub async fn set_override(
        &self,
        customer_id: i64,
        scheme_key: &str,
        data: OverrideData,
        by: i64,
    ) -> Result<Vec<ClassChange>, ApiError> {
        let pending = ClassOverride {
            id: 0,
            customer_id,
            scheme_key: scheme_key.to_string(),
            class: data.class,
            reason: data.reason,
            expires_on: data.expires_on,
            set_by: Some(by),
            set_at: chrono::Utc::now(),
            lifted_by: None,
            lifted_at: None,
        };
        self.reclassify_one(
            self.published().await?,
            customer_id,
            cause::OVERRIDE,
            Some(by),
            Some(OverrideEdit::Set(pending)),
        )
        .await
    }

    /// Lifts an override and stores the class the rules give now, in one
    /// transaction. NotFound if there is no active override.
    pub async fn lift_override(
        &self,
        customer_id: i64,
        scheme_key: &str,
        by: i64,
    ) -> Result<Vec<ClassChange>, ApiError> {
        let active = self.store.overrides_of(customer_id).await?;
        if !active
            .iter()
            .any(|o| o.scheme_key == scheme_key && o.lifted_at.is_none())
        {
            return Err(ApiError::NotFound);
        }
        // The rules decide again, percentile schemes included.
        self.rank_today().await?;
        let edit = OverrideEdit::Lift {
            customer_id,
            scheme_key: scheme_key.to_string(),
        };
        let set = self.published().await?;
        self.reclassify_one(
            set,
            customer_id,
            cause::OVERRIDE_LIFTED,
            Some(by),
            Some(edit),
        )
        .await
    }

    async fn reclassify_one(
        &self,
        set: Arc<SchemeSet>,
        customer_id: i64,
        cause: &'static str,
        by: Option<i64>,
        adjust: Option<OverrideEdit>,
    ) -> Result<Vec<ClassChange>, ApiError> {
        let plan = self.one_plan(&set, customer_id, cause, adjust);
        let as_of = plan.as_of;
        let result = self.evaluate(&plan, |_| {}, &|_, _| {}).await?;
        if result.changes.is_empty() && plan.adjust.is_none() {
            return Ok(result.changes);
        }
        let mut writer = ClassWriter::begin(&self.store, as_of, by).await?;
        match &plan.adjust {
            Some(OverrideEdit::Set(o)) => {
                let new = NewOverride {
                    customer_id,
                    scheme_key: &o.scheme_key,
                    class: &o.class,
                    reason: &o.reason,
                    expires_on: o.expires_on,
                    by: o.set_by,
                };
                kehu_store::overrides::set_override(writer.tx(), &new).await?;
            }
            Some(OverrideEdit::Lift {
                customer_id,
                scheme_key,
            }) => {
                kehu_store::overrides::lift_override(writer.tx(), *customer_id, scheme_key, by)
                    .await?;
            }
            None => {}
        }
        writer.write(&result.changes).await?;
        writer.finish().await?;
        Ok(result.changes)
    }

    /// A single customer's run: the schemes [`single_plan`](Self::single_plan)
    /// decides, and the one whose override is being set.
    fn one_plan<'s>(
        &self,
        set: &'s SchemeSet,
        customer_id: i64,
        cause: &'static str,
        adjust: Option<OverrideEdit>,
    ) -> RunPlan<'s> {
        let (mut evaluated, populations, as_of) = self.single_plan(set);
        if let Some(OverrideEdit::Set(o)) = &adjust {
            // An override needs no ranking: its scheme is always evaluated.
            if let Some(i) = set.index(&o.scheme_key) {
                evaluated[i] = true;
            }
        }
        RunPlan {
            set,
            evaluated,
            populations: Some(populations),
            as_of,
            cause,
            only: Some(customer_id),
            adjust,
        }
    }

    /// After a new record of a customer's, written with its transaction
    /// left open: re-evaluates the customer in that transaction from its
    /// facts as written and commits the two together — one transaction,
    /// not two, on the request that writes it (BENCHMARKS.md, session 35).
    /// On an error nothing is committed; the caller decides about its write.
    pub async fn commit_reclassified<T>(
        &self,
        set: Arc<SchemeSet>,
        mut opened: Opened<T>,
        by: i64,
    ) -> Result<T, ApiError> {
        let facts = opened.take_facts();
        let plan = self.one_plan(&set, facts.customer_id, cause::DATA_CHANGE, None);
        let names = ClassNames::of(&set);
        let codes = names.clone();
        let inputs = one_customer_inputs_with(opened.tx(), facts, plan.as_of, move |c, s, k| {
            codes.code(c, s, k)
        })
        .await?;
        let result = decide_one(&plan, names, inputs, |_| {}, &|_, _| {});
        if result.changes.is_empty() {
            return Ok(opened.commit().await?);
        }
        let (mut writer, record) = opened.class_writer(&self.store, plan.as_of, Some(by));
        writer.write(&result.changes).await?;
        writer.finish().await?;
        Ok(record)
    }

    /// After an order, interaction or customer write: re-evaluate that
    /// customer at once. The write itself has committed; a failure here is
    /// logged and the daily run catches up, so the caller's request succeeds.
    /// `set`: the published schemes, read by the caller.
    pub async fn after_data_change(&self, set: Arc<SchemeSet>, customer_id: i64, by: i64) {
        if let Err(e) = self
            .reclassify_one(set, customer_id, cause::DATA_CHANGE, Some(by), None)
            .await
        {
            tracing::warn!(customer_id, error = %e, "re-evaluating a customer after a data change failed");
        }
    }

    /// For the published set, with today's populations where known: which
    /// schemes a single re-evaluation decides (those that rank no one, and
    /// those ranked today), their populations, and today.
    fn single_plan(&self, set: &SchemeSet) -> (Vec<bool>, Vec<Arc<Population>>, NaiveDate) {
        let today = self.store.today();
        let known = self.read_cache().populations.clone();
        let (evaluated, populations) = set
            .schemes
            .iter()
            .map(|s| {
                if s.ranked_sources().is_empty() {
                    return (true, Arc::default());
                }
                match &known {
                    Some((day, pops)) if *day == today => match pops.get(&s.key) {
                        Some(p) => (true, p.clone()),
                        None => (false, Arc::default()),
                    },
                    _ => (false, Arc::default()),
                }
            })
            .unzip();
        (evaluated, populations, today)
    }

    /// Why a customer is in each published scheme's class as of a day:
    /// the rules' explanation, and the override that wins over it if any.
    /// Percentile schemes rank against today's populations (built now if
    /// the daily run has not), or, for another day, against that day's.
    pub async fn explain(
        &self,
        customer_id: i64,
        as_of: NaiveDate,
        lang: kehu_core::Lang,
    ) -> Result<Vec<Explained>, ApiError> {
        let set = self.published().await?;
        let populations = self.populations_on(&set, as_of).await?;
        let facts = self.store.facts_of(customer_id).await?;
        let stored = self.store.classes_of_customer(customer_id).await?;
        let overrides = self
            .store
            .overrides_between(customer_id, customer_id, as_of)
            .await?;
        let overrides = overrides.get(&customer_id);
        let mut classes: Vec<(String, String)> = Vec::new();
        let mut out = Vec::new();
        for (i, s) in set.schemes.iter().enumerate() {
            let others: Vec<(&str, &str)> = classes
                .iter()
                .map(|(k, c)| (k.as_str(), c.as_str()))
                .collect();
            let context = ClassContext {
                previous: stored.get(&s.key).map(String::as_str),
                others: Some(&others),
            };
            static NONE: Population = Population::EMPTY;
            let population = populations.get(&s.key).map_or(&NONE, |p| &**p);
            let explanation = s.explain(&facts, as_of, population, context, lang);
            let active = overrides.and_then(|m| m.get(&s.key)).cloned();
            let class = active
                .as_ref()
                .map_or(explanation.class.clone(), |o| o.class.clone());
            classes.push((s.key.clone(), class.clone()));
            out.push(Explained {
                version: set.versions[i],
                classes: s.class_keys(),
                class,
                active_override: active,
                explanation,
            });
        }
        Ok(out)
    }

    /// Populations of the published set as of a day: cached for today.
    async fn populations_on(
        &self,
        set: &Arc<SchemeSet>,
        as_of: NaiveDate,
    ) -> Result<Arc<PopulationsByScheme>, ApiError> {
        let today = self.store.today();
        if as_of == today {
            self.rank_today().await?;
            if let Some((day, p)) = self.read_cache().populations.clone() {
                if day == today {
                    return Ok(p);
                }
            }
        }
        let every = vec![true; set.schemes.len()];
        let built = self.ranked_populations(set, &every, as_of).await?;
        Ok(Arc::new(
            set.schemes
                .iter()
                .zip(built)
                .map(|(s, p)| (s.key.clone(), p))
                .collect(),
        ))
    }

    /// Opens a writer for a run's changes and what belongs with them.
    pub async fn writer(
        &self,
        as_of: NaiveDate,
        by: Option<i64>,
    ) -> Result<ClassWriter, StoreError> {
        ClassWriter::begin(&self.store, as_of, by).await
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}

/// Every customer a run reads, measured for the run's set of schemes.
struct Measured {
    table: MetricTable,
    /// Customer codes by table row.
    codes: Vec<String>,
}

impl Measured {
    fn new(metrics: Vec<Metric>, as_of: NaiveDate) -> Measured {
        Measured {
            table: MetricTable::new(metrics, as_of),
            codes: Vec::new(),
        }
    }

    fn add(&mut self, f: &Facts, values: Vec<Value>) {
        let row = self.table.upsert(f.customer_id, values);
        match self.codes.get_mut(row) {
            Some(code) => code.clone_from(&f.code),
            None => self.codes.push(f.code.clone()),
        }
    }
}

/// `work` over `0..len` split into one range per core (in order), the
/// results concatenated in order. Small inputs stay on this thread.
fn on_all_cores<R: Send>(len: usize, work: impl Fn(Range<usize>) -> Vec<R> + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per = len.div_ceil(workers).max(256);
    if len <= per {
        return work(0..len);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..len)
            .step_by(per)
            .map(|start| {
                let work = &work;
                scope.spawn(move || work(start..len.min(start + per)))
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a classification worker panicked"))
            .collect()
    })
}

/// One customer's stored classes, as a run's set names its schemes.
#[derive(Clone, Copy)]
struct StoredRow<'a> {
    codes: Option<&'a [u16]>,
    /// The grid's scheme index of each scheme of the set.
    schemes: &'a [Option<usize>],
    names: &'a ClassNames,
}

impl<'a> StoredRow<'a> {
    /// The stored class of scheme `i` of the set.
    fn class(&self, i: usize) -> Option<&'a str> {
        let g = self.schemes[i]?;
        self.names.name(g, self.codes?[g])
    }
}

/// Customers per class of one scheme, counted by class index (a name is
/// looked up only for an override's class).
struct ClassCounts {
    by_index: Vec<u64>,
    /// Override classes the scheme no longer has.
    other: BTreeMap<String, u64>,
}

impl ClassCounts {
    fn new(classes: usize) -> ClassCounts {
        ClassCounts {
            by_index: vec![0; classes],
            other: BTreeMap::new(),
        }
    }

    /// One more customer in `class` (`index` in `s`, when the rules gave it).
    fn add(&mut self, s: &Scheme, index: Option<usize>, class: &str) {
        match index.or_else(|| s.classes.iter().position(|c| c.key == class)) {
            Some(i) => self.by_index[i] += 1,
            None => *self.other.entry(class.to_string()).or_default() += 1,
        }
    }

    /// The classes that have customers, by name.
    fn by_key(self, s: &Scheme) -> BTreeMap<String, u64> {
        let mut out = self.other;
        for (c, n) in s.classes.iter().zip(self.by_index) {
            if n > 0 {
                *out.entry(c.key.clone()).or_default() += n;
            }
        }
        out
    }
}

/// The stored classes and active overrides a run compares with.
struct BatchInputs<'a> {
    grid: &'a ClassGrid,
    /// The grid's scheme index of each scheme of the set.
    schemes: &'a [Option<usize>],
    overrides: &'a OverridesByCustomer,
}

impl<'a> BatchInputs<'a> {
    fn of(&self, customer_id: i64) -> (StoredRow<'a>, &'a HashMap<String, ClassOverride>) {
        static NO_OVERRIDES: std::sync::LazyLock<HashMap<String, ClassOverride>> =
            std::sync::LazyLock::new(HashMap::new);
        (
            StoredRow {
                codes: self.grid.row(customer_id),
                schemes: self.schemes,
                names: &self.grid.names,
            },
            self.overrides.get(&customer_id).unwrap_or(&NO_OVERRIDES),
        )
    }
}

/// One customer's classes decided from what was read for it.
fn decide_one(
    plan: &RunPlan<'_>,
    names: ClassNames,
    inputs: kehu_store::classes::OneCustomerInputs<grid::Coded>,
    visit: impl FnMut(&Outcome<'_>),
    progress: Progress<'_>,
) -> RunResult {
    let evaluator = plan.evaluator();
    let mut measured = Measured::new(evaluator.metrics(), plan.as_of);
    measured.add(&inputs.facts, evaluator.measure_metrics(&inputs.facts));
    progress(Phase::Reading, 1);
    let mut grid = ClassGrid::new(names);
    grid.add(inputs.classes);
    let overrides = inputs.overrides;
    let (mut result, _) = decide_everyone(
        plan, &evaluator, &measured, &grid, overrides, visit, progress,
    );
    result.measured = 1;
    result
}

/// Decides every row of `measured` for the plan, in batches, and returns
/// the result with the populations ranked against.
fn decide_everyone(
    plan: &RunPlan<'_>,
    evaluator: &SetEvaluator<'_>,
    measured: &Measured,
    grid: &ClassGrid,
    mut overrides: OverridesByCustomer,
    mut visit: impl FnMut(&Outcome<'_>),
    progress: Progress<'_>,
) -> (RunResult, Vec<Arc<Population>>) {
    let (set, table) = (plan.set, &measured.table);
    let binding = evaluator
        .bind(table)
        .expect("a run decides only from a table that holds its metrics");
    let populations: Vec<Arc<Population>> = match &plan.populations {
        Some(p) => p.clone(),
        None => evaluator
            .populations(&binding, table)
            .into_iter()
            .map(Arc::new)
            .collect(),
    };
    if let Some(edit) = &plan.adjust {
        edit.apply(&mut overrides);
    }
    let schemes: Vec<Option<usize>> = set
        .schemes
        .iter()
        .map(|s| grid.names.scheme(&s.key))
        .collect();
    let inputs = BatchInputs {
        grid,
        schemes: &schemes,
        overrides: &overrides,
    };
    let run = Run {
        plan,
        evaluator,
        binding: &binding,
        measured,
        populations: populations.iter().map(|p| &**p).collect(),
    };
    let mut counts: Vec<ClassCounts> = set
        .schemes
        .iter()
        .map(|s| ClassCounts::new(s.classes.len()))
        .collect();
    let mut result = RunResult::default();
    for start in (0..table.rows()).step_by(BATCH as usize) {
        let rows = start..table.rows().min(start + BATCH as usize);
        let n = rows.len() as u64;
        run.decide_batch(rows, &inputs, &mut counts, &mut result.changes, &mut visit);
        progress(Phase::Deciding, n);
    }
    result.customers = table.customers() as u64;
    result.counts = set
        .schemes
        .iter()
        .zip(counts)
        .zip(&plan.evaluated)
        .filter(|(_, &e)| e)
        .map(|((s, c), _)| (s.key.clone(), c.by_key(s)))
        .collect();
    (result, populations)
}

/// Customers whose data changed that a catch-up reads one by one; more
/// and everyone is read again.
const CATCH_UP_MAX: usize = 2_000;

/// Everyone's measured metrics and stored classes as of one day, kept
/// between runs and caught up from the change feed: a run then reads only
/// the customers whose data or classes changed since the last.
struct Resident {
    /// Measured as of the table's day.
    measured: Measured,
    grid: ClassGrid,
    /// The change feed entry everything here reflects.
    mark: i64,
    /// Change feed entries of this server's own class writes (already applied).
    own: Vec<FeedSpan>,
}

impl Resident {
    /// Whether a plan can be decided from here: same day, every metric
    /// measured, every scheme's classes kept.
    fn serves(&self, plan: &RunPlan<'_>) -> bool {
        // Binding checks the day too.
        plan.evaluator().bind(&self.measured.table).is_ok()
            && plan
                .set
                .schemes
                .iter()
                .all(|s| self.grid.names.scheme(&s.key).is_some())
    }
}

/// A run over everyone with the resident it was decided from, still held:
/// what the caller stores is applied to it before anyone else runs.
struct Held<'c> {
    slot: tokio::sync::MutexGuard<'c, Option<Resident>>,
    result: RunResult,
    populations: Vec<Arc<Population>>,
}

impl Held<'_> {
    /// After the run's changes were stored (`stored`).
    fn stored(&mut self, stored: Stored) {
        let Some(resident) = self.slot.as_mut() else {
            return;
        };
        for c in &self.result.changes {
            resident.grid.set(c.customer_id, &c.scheme_key, &c.to);
        }
        resident.own.extend(stored.feed);
    }
}

/// A run's measured customers and what it decides them with.
struct Run<'r> {
    plan: &'r RunPlan<'r>,
    evaluator: &'r SetEvaluator<'r>,
    binding: &'r Binding,
    measured: &'r Measured,
    populations: Vec<&'r Population>,
}

impl Run<'_> {
    /// Decides the table rows `rows`: the rules' verdicts are computed on
    /// every core (they are most of the work), then the rows are walked in
    /// order to call `visit`, count and collect the changes.
    fn decide_batch(
        &self,
        rows: Range<usize>,
        inputs: &BatchInputs<'_>,
        counts: &mut [ClassCounts],
        changes: &mut Vec<ClassChange>,
        visit: &mut impl FnMut(&Outcome<'_>),
    ) {
        let (plan, table) = (self.plan, &self.measured.table);
        // One entry per live row and evaluated scheme, in walking order;
        // None where an override wins.
        let verdicts: Vec<Option<Verdict>> = on_all_cores(rows.len(), |part| {
            let mut scratch = self.evaluator.scratch();
            let mut classes = Vec::with_capacity(plan.set.schemes.len());
            let mut out = Vec::with_capacity(part.len() * plan.set.schemes.len());
            for row in rows.start + part.start..rows.start + part.end {
                if !table.is_live(row) {
                    continue;
                }
                self.evaluator
                    .load(self.binding, table, row, &self.populations, &mut scratch);
                let (stored, overrides) = inputs.of(table.customer_id(row));
                walk(plan, stored, overrides, &mut classes, |i, ctx, o| {
                    if o.is_some() {
                        out.push(None);
                        return None;
                    }
                    let v =
                        self.evaluator
                            .decide_row(i, self.binding, table, row, &mut scratch, ctx);
                    out.push(Some(v));
                    Some(v.class)
                });
            }
            out
        });
        let mut verdicts = verdicts.into_iter();
        let mut classes = Vec::with_capacity(plan.set.schemes.len());
        for row in rows {
            if !table.is_live(row) {
                continue;
            }
            let customer_id = table.customer_id(row);
            let (stored, overrides) = inputs.of(customer_id);
            walk(plan, stored, overrides, &mut classes, |i, context, o| {
                let s = &plan.set.schemes[i];
                let verdict = verdicts.next().flatten();
                let (class, verdict) = match o {
                    Some(o) => (o.class.as_str(), None),
                    None => {
                        let v =
                            verdict.expect("the first pass decided every scheme the rules decide");
                        (s.classes[v.class].key.as_str(), Some(v))
                    }
                };
                // `walk` looked the stored class up: it is the context's previous class.
                let before = context.previous;
                let score = verdict.and_then(|v| s.weighted_score(v.score));
                visit(&Outcome {
                    customer_id,
                    code: &self.measured.codes[row],
                    scheme: s,
                    population: self.populations[i],
                    class,
                    before,
                    score,
                    verdict,
                    context,
                });
                counts[i].add(s, verdict.map(|v| v.class), class);
                if before != Some(class) {
                    let (cause, note) = match o {
                        None => (plan.cause, None),
                        Some(o) => (cause::OVERRIDE, Some(o.reason.clone())),
                    };
                    changes.push(ClassChange {
                        customer_id,
                        scheme_key: s.key.clone(),
                        from: before.map(str::to_string),
                        to: class.to_string(),
                        score,
                        scheme_version: plan.set.versions[i],
                        cause,
                        note,
                    });
                }
                verdict.map(|v| v.class)
            });
        }
    }
}

/// One customer through the plan's schemes in evaluation order, keeping the
/// classes in force (in `classes`, reused from customer to customer) for
/// the schemes that read them: a scheme not evaluated keeps its stored
/// class; for the others `each(i, context, override)` is called and
/// returns the rules' class index (None when the override wins). Both
/// passes of a batch walk the same way.
fn walk<'a>(
    plan: &'a RunPlan<'_>,
    stored: StoredRow<'a>,
    overrides: &'a HashMap<String, ClassOverride>,
    classes: &mut Vec<(&'a str, &'a str)>,
    mut each: impl FnMut(usize, ClassContext<'_>, Option<&'a ClassOverride>) -> Option<usize>,
) {
    classes.clear();
    for (i, s) in plan.set.schemes.iter().enumerate() {
        let before = stored.class(i);
        if !plan.evaluated[i] {
            if let Some(b) = before {
                classes.push((&s.key, b));
            }
            continue;
        }
        let context = ClassContext {
            previous: before,
            others: Some(classes),
        };
        let o = match overrides.is_empty() {
            true => None,
            false => overrides.get(&s.key),
        };
        let class: &str = match (each(i, context, o), o) {
            (_, Some(o)) => &o.class,
            (Some(c), None) => &s.classes[c].key,
            (None, None) => continue,
        };
        classes.push((&s.key, class));
    }
}

/// What publishing a draft would do: how many customers move from each
/// class to each other class, with examples. Nothing is stored.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Simulation {
    pub scheme: String,
    pub version: i64,
    pub as_of: NaiveDate,
    pub customers: u64,
    /// Customers per class now (stored), and with the draft.
    pub before: BTreeMap<String, u64>,
    pub after: BTreeMap<String, u64>,
    /// Customers whose class would stay.
    pub unchanged: u64,
    /// Biggest moves first.
    pub moves: Vec<Move>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Move {
    /// None: no class stored yet.
    pub from: Option<String>,
    pub to: String,
    pub count: u64,
    /// Up to five customers who would move.
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Sample {
    pub id: i64,
    pub code: String,
}

/// Examples kept per move.
const SAMPLES: usize = 5;

impl Classifier {
    /// Runs `spec` (version `version` of its scheme) over every customer as
    /// of a day, in place of the published version, against the stored
    /// classes. Overridden customers stay where their override puts them.
    pub async fn simulate(
        &self,
        version: i64,
        spec: SchemeSpec,
        as_of: NaiveDate,
    ) -> Result<Simulation, ApiError> {
        let key = spec.key.clone();
        let set = self.compile_published(Some((version, spec))).await?;
        let plan = RunPlan::over(
            &set,
            &BTreeSet::from([key.clone()]),
            as_of,
            cause::EVALUATION,
        );
        let mut sim = Simulation {
            scheme: key,
            version,
            as_of,
            ..Simulation::default()
        };
        let mut moves: BTreeMap<(Option<String>, String), Move> = BTreeMap::new();
        let result = self
            .evaluate(
                &plan,
                |o| {
                    if let Some(b) = o.before {
                        *sim.before.entry(b.to_string()).or_default() += 1;
                    }
                    *sim.after.entry(o.class.to_string()).or_default() += 1;
                    if o.before == Some(o.class) {
                        sim.unchanged += 1;
                        return;
                    }
                    let from = o.before.map(str::to_string);
                    let m = moves
                        .entry((from.clone(), o.class.to_string()))
                        .or_insert_with(|| Move {
                            from,
                            to: o.class.to_string(),
                            count: 0,
                            samples: Vec::new(),
                        });
                    m.count += 1;
                    if m.samples.len() < SAMPLES {
                        m.samples.push(Sample {
                            id: o.customer_id,
                            code: o.code.to_string(),
                        });
                    }
                },
                &|_, _| {},
            )
            .await?;
        sim.customers = result.customers;
        sim.moves = moves.into_values().collect();
        sim.moves.sort_by_key(|m| std::cmp::Reverse(m.count));
        Ok(sim)
    }

    /// Publishes a version (publish or rollback): every customer is
    /// re-evaluated in the schemes it changes (the scheme and those that
    /// read its class), and the version's status and the classes it gives
    /// commit in one transaction — all or nothing. Returns the changes.
    pub async fn publish(
        &self,
        version: &kehu_store::schemes::SchemeVersion,
        spec: SchemeSpec,
        step: kehu_core::classify::workflow::Step,
        by: i64,
        note: Option<&str>,
    ) -> Result<Vec<ClassChange>, ApiError> {
        let as_of = self.store.today();
        let set = Arc::new(
            self.compile_published(Some((version.version, spec)))
                .await?,
        );
        let targets = set.with_readers(&version.scheme_key);
        let plan = RunPlan::over(&set, &targets, as_of, cause::RULE_VERSION);
        let mut held = self.evaluate_everyone(&plan, |_| {}, &|_, _| {}).await?;
        let mut writer = ClassWriter::begin(&self.store, as_of, Some(by)).await?;
        kehu_store::schemes::publish_in(writer.tx(), version, step, by, note).await?;
        writer.write(&held.result.changes).await?;
        // The publish is a new workflow step: the rules stamp moves and the
        // next use compiles the new set (here and on every other server).
        held.stored(writer.finish().await?);
        Ok(held.result.changes)
    }
}
