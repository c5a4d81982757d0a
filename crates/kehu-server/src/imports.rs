//! Importing customers, contacts, orders and interactions from a table
//! (CSV or workbook), one engine for `kehu import`, the API and the UI.
//!
//! Every row is read through the column mapping (`kehu_core::import`),
//! validated by the same code as every other path, looked up by its natural
//! key (customer code, else USCC; an order's number, else its date, amount
//! and product line; an interaction's date, kind and summary; a contact's
//! customer and name) and classified as new, updated, unchanged, invalid or
//! a likely duplicate of an existing customer. A dry run reads only. Applying
//! runs the same pass inside one transaction (`kehu_store::imports::ImportWriter`):
//! all valid rows or, with `abort`, nothing when any row is invalid; an
//! empty cell never clears a stored value, so a second run of the same file
//! changes nothing. Rows stream in chunks, read and parsed on a thread of
//! their own a few chunks ahead of the planning; memory holds those chunks
//! and the keys seen so far.

use crate::error::ApiError;
use crate::tabular::{Row, Table, TabularError};
use crate::AppState;
use kehu_core::contact::{ContactData, ContactInput};
use kehu_core::customer::{CustomerData, CustomerInput, CustomerRules};
use kehu_core::dedupe::abbreviation::AbbreviationIndex;
use kehu_core::dedupe::company::{self, CompanyName, COMPARED_PER_SOUND};
use kehu_core::import::{
    overlay_contact, overlay_customer, repeated_row, row_key, Columns, CustomColumn, RowInput,
    RowProblem,
};
use kehu_core::import_mapping::{
    custom_columns, resolve, ImportKind, MappingFile, Target, CUSTOM_PREFIX,
};
use kehu_core::interaction::{InteractionData, InteractionInput, InteractionKind};
use kehu_core::order::{OrderData, OrderInput};
use kehu_core::role::{Actor, Ownership, Permission};
use kehu_core::text::clean;
use kehu_core::Reason;
use kehu_store::imports::{ImportOutcome, ImportWriter, Lookup, NewImport, Touched};
use kehu_store::model::{Contact, Customer, Interaction, Order};
use kehu_store::{Owner, SoundMatch};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Rows read, looked up and written together.
const CHUNK: usize = 1_000;
/// Problems kept with the import's record (the counts are always complete).
pub const PROBLEMS_KEPT: usize = 1_000;
/// Customers re-classified one by one after an import; more → everyone at once.
const RECLASSIFY_ONE_BY_ONE: usize = 200;

/// What to do when a row is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnInvalid {
    /// Import the valid rows, report the others.
    Skip,
    /// Import nothing if any row is invalid.
    Abort,
}

impl OnInvalid {
    pub fn name(self) -> &'static str {
        match self {
            OnInvalid::Skip => "skip",
            OnInvalid::Abort => "abort",
        }
    }
    pub fn parse(s: &str) -> Option<OnInvalid> {
        match s {
            "skip" => Some(OnInvalid::Skip),
            "abort" => Some(OnInvalid::Abort),
            _ => None,
        }
    }
}

/// Who imports: their user (owner of new customers) and rights. `actor`
/// None = unrestricted (the command line, which holds the database).
#[derive(Debug, Clone)]
pub struct Importer {
    pub user_id: Option<i64>,
    pub team: Option<String>,
    pub actor: Option<Actor>,
}

impl Importer {
    fn may(&self, p: Permission, owner_id: Option<i64>, team: Option<&str>) -> bool {
        match &self.actor {
            None => true,
            Some(a) => a.may(p, Ownership { owner_id, team }),
        }
    }

    fn has(&self, p: Permission) -> bool {
        self.actor.as_ref().is_none_or(|a| a.grants.has(p))
    }

    /// Whether every import is visible (rights reaching every customer, or the command line).
    fn sees_every_import(&self) -> bool {
        self.actor.as_ref().is_none_or(|a| {
            a.grants.scope(Permission::CustomerCreate) == Some(kehu_core::role::Scope::All)
        })
    }

    /// Fails unless the importer may import `kind` at all.
    pub fn check(&self, kind: ImportKind) -> Result<(), ApiError> {
        let ok = match kind {
            ImportKind::Customers => self.has(Permission::CustomerCreate),
            ImportKind::Contacts | ImportKind::Orders => self.has(Permission::RecordWrite),
            ImportKind::Interactions => {
                self.has(Permission::InteractionWrite) || self.has(Permission::ServiceRecordWrite)
            }
        };
        if ok {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// How one import runs.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub kind: ImportKind,
    pub file_name: String,
    pub mapping: Option<MappingFile>,
    pub on_invalid: OnInvalid,
    /// Leave likely duplicates of existing customers out (they go in by default, reported).
    pub skip_suspects: bool,
}

/// Row counts by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportCounts {
    /// Data rows read.
    pub rows: u64,
    pub new: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub invalid: u64,
    /// New customers that look like an existing one (or an earlier row).
    pub duplicate_suspects: u64,
    /// Likely duplicates left out (`skip_suspects`).
    pub skipped: u64,
    /// Customers kept with missing required fields (待跟进).
    pub follow_up: u64,
    /// Problems (errors and warnings) in all.
    pub problems: u64,
}

/// A column of the file and the field it feeds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MappedColumn {
    pub column: usize,
    pub header: String,
    pub field: String,
}

/// The result of a dry run or an application.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    /// The import's record (dry runs are recorded too).
    pub id: Option<i64>,
    pub kind: String,
    pub file_name: String,
    /// `dry_run`, `applied`, `refused` (abort and invalid rows: nothing written) or `undone`.
    pub status: String,
    pub counts: ImportCounts,
    pub mapping: Vec<MappedColumn>,
    /// The file's headers.
    pub headers: Vec<String>,
    /// The first problems (errors refuse a row; warnings do not); how many
    /// there are in all is `counts.problems`.
    #[schema(value_type = Vec<Object>)]
    pub problems: Vec<RowProblem>,
}

impl ImportReport {
    pub fn outcome(&self, on_invalid: Option<OnInvalid>, skip_suspects: bool) -> ImportOutcome {
        ImportOutcome {
            status: match self.status.as_str() {
                "applied" => "applied",
                "refused" => "refused",
                _ => "dry_run",
            },
            on_invalid: on_invalid.map(OnInvalid::name),
            skip_suspects,
            headers: serde_json::Value::from(self.headers.clone()),
            mapping: serde_json::to_value(&self.mapping).unwrap_or_default(),
            counts: serde_json::to_value(&self.counts).unwrap_or_default(),
            problems: serde_json::to_value(&self.problems).unwrap_or_default(),
        }
    }
}

/// Where problems go besides the report's first ones (an error file).
pub trait ProblemSink: Send {
    fn problem(&mut self, p: &RowProblem);
    /// Rows read so far (a progress bar).
    fn progress(&mut self, _rows: u64) {}
}

impl ProblemSink for () {
    fn problem(&mut self, _p: &RowProblem) {}
}

fn table_error(e: TabularError) -> ApiError {
    ApiError::field(
        "file",
        Reason::Other {
            zh: format!("无法读取文件：{e}"),
            en: format!("the file cannot be read: {e}"),
        },
    )
}

fn mapping_error(e: kehu_core::import_mapping::MappingError) -> ApiError {
    ApiError::field("mapping", e.reason())
}

/// The columns of `headers` for `kind`: what the import will read.
pub fn mapped_columns(
    kind: ImportKind,
    headers: &[String],
    mapping: Option<&MappingFile>,
) -> Result<Vec<(usize, &'static Target)>, ApiError> {
    resolve(kind, headers, mapping).map_err(mapping_error)
}

/// The columns of `headers` that feed custom fields of customers.
fn custom_columns_of(
    headers: &[String],
    mapping: Option<&MappingFile>,
    defs: &[kehu_core::custom_field::CustomFieldDef],
    chosen: &[(usize, &'static Target)],
) -> Result<Vec<CustomColumn>, ApiError> {
    let fields: Vec<(&str, &str)> = defs
        .iter()
        .map(|d| (d.key.as_str(), d.label.as_str()))
        .collect();
    let taken: Vec<usize> = chosen.iter().map(|(c, _)| *c).collect();
    let found = custom_columns(headers, mapping, &fields, &taken).map_err(mapping_error)?;
    Ok(found
        .into_iter()
        .map(|(column, key)| CustomColumn {
            list: defs
                .iter()
                .any(|d| d.key == key && d.kind == kehu_core::custom_field::FieldKind::MultiEnum),
            column,
            key,
        })
        .collect())
}

/// What planning a row decided.
enum Plan {
    Invalid(Vec<RowProblem>),
    Unchanged,
    NewCustomer {
        data: Box<CustomerData>,
        contact: Option<ContactData>,
        suspect: Option<RowProblem>,
    },
    UpdateCustomer {
        before: Box<Customer>,
        /// None: the customer's own fields stay (only its contact changes).
        data: Option<Box<CustomerData>>,
        contact: ContactPlan,
    },
    Contact {
        customer_id: i64,
        plan: ContactPlan,
    },
    NewOrder {
        customer_id: i64,
        data: OrderData,
    },
    UpdateOrder {
        before: Order,
        data: OrderData,
    },
    NewInteraction {
        customer_id: i64,
        data: InteractionData,
    },
}

/// What happens to a contact given on a row.
enum ContactPlan {
    None,
    Same,
    /// A new contact, with a warning when it looks like a stored one.
    Insert(ContactData, Option<Box<RowProblem>>),
    Update(Box<Contact>, ContactData),
}

impl ContactPlan {
    /// The landline the contact will have (for the region of its customer).
    fn landline(&self) -> Option<&str> {
        match self {
            ContactPlan::Insert(d, _) | ContactPlan::Update(_, d) => d.landline.as_deref(),
            ContactPlan::None | ContactPlan::Same => None,
        }
    }

    fn changes(&self) -> bool {
        matches!(self, ContactPlan::Insert(..) | ContactPlan::Update(..))
    }
}

/// How the file's rows are read and checked: its columns, their mapping
/// and the rules values must follow. Owned, for the reader thread
/// ([`read_ahead`]) shares it with the planner.
struct Sheet {
    kind: ImportKind,
    headers: Vec<String>,
    chosen: Vec<(usize, &'static Target)>,
    custom: Vec<CustomColumn>,
    industries: Vec<String>,
    defs: Vec<kehu_core::custom_field::CustomFieldDef>,
    today: chrono::NaiveDate,
}

impl Sheet {
    fn columns(&self) -> Columns<'_> {
        Columns {
            kind: self.kind,
            headers: &self.headers,
            chosen: &self.chosen,
            custom: &self.custom,
        }
    }

    fn rules(&self) -> CustomerRules<'_> {
        CustomerRules {
            industries: &self.industries,
            custom_fields: &self.defs,
            today: self.today,
        }
    }

    fn invalid(&self, row: &Row, field: &str, reason: Reason) -> Plan {
        Plan::Invalid(vec![self
            .columns()
            .problem(row.number, &row.cells, field, &reason, false)])
    }
}

/// Everything planning needs besides the rows.
struct Context<'a> {
    sheet: Arc<Sheet>,
    importer: &'a Importer,
    /// New customers' normalized names in this file → first row.
    new_names: HashMap<String, u64>,
    /// New customers' name sounds in this file → first row and its name.
    new_sounds: HashMap<String, (u64, CompanyName)>,
    /// New customers' names in this file, for a later row that abbreviates
    /// one or is abbreviated by one.
    new_abbreviations: AbbreviationIndex<(u64, CompanyName)>,
    /// Stored customers' names, the same way, read once
    /// [`reads_all_stored_names`] (a name's characters are not indexed in
    /// the database).
    stored_abbreviations: Option<AbbreviationIndex<i64>>,
    /// New names looked up in the database so far, while the stored ones
    /// are not in memory.
    names_looked_up: usize,
    /// Records written by an earlier row of this file → that row.
    touched: HashMap<(Claimed, i64), u64>,
}

impl Context<'_> {
    fn columns(&self) -> Columns<'_> {
        self.sheet.columns()
    }

    fn rules(&self) -> CustomerRules<'_> {
        self.sheet.rules()
    }

    fn invalid(&self, row: &Row, field: &str, reason: Reason) -> Plan {
        self.sheet.invalid(row, field, reason)
    }

    /// The problems of a row that sets or changes fields the importer may
    /// not edit (`check` given their rights), each naming its column; the
    /// command line edits every field.
    fn not_editable(
        &self,
        row: &Row,
        prefix: &str,
        check: impl FnOnce(&kehu_core::privacy::FieldRights) -> Result<(), kehu_core::ValidationErrors>,
    ) -> Option<Vec<RowProblem>> {
        let rights = &self.importer.actor.as_ref()?.fields;
        let e = check(rights).err()?;
        Some(self.columns().problems(row.number, &row.cells, prefix, &e))
    }

    /// A second row about a record an earlier row wrote.
    fn claim(&mut self, entity: Claimed, id: i64, row: u64) -> Option<u64> {
        match self.touched.get(&(entity, id)) {
            Some(first) => Some(*first),
            None => {
                self.touched.insert((entity, id), row);
                None
            }
        }
    }
}

fn unknown_customer() -> Reason {
    Reason::Other {
        zh: "没有这个客户编号的客户（或您无权操作）".into(),
        en: "no customer with this code (or not one you may change)".into(),
    }
}

/// Runs an import: a dry run when `writer` is None, else the application
/// in `writer`'s transaction (committed by the caller through `finish`).
async fn run_rows(
    state: &AppState,
    table: Table,
    options: &ImportOptions,
    importer: &Importer,
    mut writer: Option<&mut ImportWriter>,
    sink: &mut dyn ProblemSink,
) -> Result<ImportReport, ApiError> {
    let headers = table.headers.clone();
    let chosen = mapped_columns(options.kind, &headers, options.mapping.as_ref())?;
    let defs = state.store.custom_field_defs().await?;
    let custom = match options.kind {
        ImportKind::Customers => {
            custom_columns_of(&headers, options.mapping.as_ref(), &defs, &chosen)?
        }
        _ => Vec::new(),
    };
    let sheet = Arc::new(Sheet {
        kind: options.kind,
        headers,
        chosen,
        custom,
        industries: state.store.industries().await?,
        defs,
        today: state.store.today(),
    });
    let mut cx = Context {
        sheet: sheet.clone(),
        importer,
        new_names: HashMap::new(),
        new_sounds: HashMap::new(),
        new_abbreviations: AbbreviationIndex::default(),
        stored_abbreviations: None,
        names_looked_up: 0,
        touched: HashMap::new(),
    };
    let mut counts = ImportCounts::default();
    let mut problems: Vec<RowProblem> = Vec::new();
    let mut problems_total = 0u64;
    let masks = kehu_core::import::ProblemMasks::of(options.kind, &sheet.defs);
    let mut note = |p: RowProblem, sink: &mut dyn ProblemSink| {
        let p = masks.apply(p);
        problems_total += 1;
        sink.problem(&p);
        if problems.len() < PROBLEMS_KEPT {
            problems.push(p);
        }
    };
    let (mut chunks, reader) = read_ahead(table, sheet.clone());
    let mut refused = false;
    while let Some(chunk) = chunks.recv().await {
        let ReadChunk {
            unreadable,
            rows,
            read,
        } = chunk.map_err(table_error)?;
        counts.rows += (unreadable.len() + rows.len()) as u64;
        counts.invalid += unreadable.len() as u64;
        for p in unreadable {
            note(p, sink);
        }
        // A chunk of unreadable rows only still moves the progress on.
        if !rows.is_empty() {
            let plans = match writer.as_deref_mut() {
                Some(w) => plan_chunk(&mut cx, &rows, read, &mut w.reader()).await?,
                None => plan_chunk(&mut cx, &rows, read, &mut state.store.import_reader()).await?,
            };
            let mut to_write = Vec::with_capacity(plans.len());
            for plan in plans {
                if tally(&mut counts, &plan, options.skip_suspects, |p| note(p, sink)) {
                    to_write.push(plan);
                }
            }
            // With `abort`, an invalid row means nothing will be kept: the rest
            // is still read and counted, for a whole report, but not written.
            refused |= options.on_invalid == OnInvalid::Abort && counts.invalid > 0;
            if let (Some(w), false) = (writer.as_deref_mut(), refused) {
                write(w, to_write, importer).await?;
            }
        }
        sink.progress(counts.rows);
    }
    // The channel also closes when the reader dies: only its clean end is
    // the end of the file.
    reader.await.map_err(|e| {
        ApiError::Internal(format!(
            "导入文件的读取线程出错 / the import's reader thread failed: {e}"
        ))
    })?;
    counts.problems = problems_total;
    let status = match (writer.is_some(), refused) {
        (false, _) => "dry_run",
        (true, true) => "refused",
        (true, false) => "applied",
    };
    Ok(ImportReport {
        id: None,
        kind: options.kind.name().to_string(),
        file_name: options.file_name.clone(),
        status: status.to_string(),
        counts,
        mapping: {
            let (chosen, headers) = (&sheet.chosen, &sheet.headers);
            let mut m: Vec<MappedColumn> = chosen
                .iter()
                .map(|(c, t)| MappedColumn {
                    column: *c,
                    header: headers[*c].clone(),
                    field: t.key.to_string(),
                })
                .chain(sheet.custom.iter().map(|c| MappedColumn {
                    column: c.column,
                    header: headers[c.column].clone(),
                    field: format!("{CUSTOM_PREFIX}{}", c.key),
                }))
                .collect();
            m.sort_by_key(|c| c.column);
            m
        },
        headers: sheet.headers.clone(),
        problems,
    })
}

/// Chunks read ahead of planning.
const CHUNKS_READ_AHEAD: usize = 2;

/// A chunk of the file as read, before anything is looked up.
struct ReadChunk {
    /// Problems of the rows that could not be read at all (each invalid;
    /// they came before `rows`).
    unreadable: Vec<RowProblem>,
    rows: Vec<Row>,
    /// Each of `rows` read into its input, or its plan when the row is
    /// invalid already (bad cells, or repeating an earlier row of the file).
    read: Vec<Result<RowInput, Plan>>,
}

/// Reads and parses the file on a thread of its own, [`CHUNKS_READ_AHEAD`]
/// chunks ahead, while the rows before are looked up and written: decoding
/// and parsing use the second core instead of waiting for the database.
/// The handle ends with the thread (an error if it panicked).
fn read_ahead(
    table: Table,
    sheet: Arc<Sheet>,
) -> (
    tokio::sync::mpsc::Receiver<Result<ReadChunk, TabularError>>,
    tokio::task::JoinHandle<()>,
) {
    let (sender, chunks) = tokio::sync::mpsc::channel(CHUNKS_READ_AHEAD);
    let mut reader = RowReader {
        sheet,
        rows: table,
        seen: HashMap::new(),
    };
    let thread = tokio::task::spawn_blocking(move || {
        while let Some(next) = reader.next_chunk().transpose() {
            let failed = next.is_err();
            // A closed channel: the import stopped (an error), so does reading.
            if sender.blocking_send(next).is_err() || failed {
                break;
            }
        }
    });
    (chunks, thread)
}

struct RowReader {
    sheet: Arc<Sheet>,
    rows: Table,
    /// Row keys seen in this file → the row they were first seen on.
    seen: HashMap<String, u64>,
}

// A row's input and its plan are both large, and both short-lived (a
// chunk's worth at a time): boxing them would only add allocations.
#[allow(clippy::result_large_err)]
impl RowReader {
    /// The next [`CHUNK`] rows with content, None at the end of the file.
    fn next_chunk(&mut self) -> Result<Option<ReadChunk>, TabularError> {
        let mut unreadable = Vec::new();
        let mut rows: Vec<Row> = Vec::with_capacity(CHUNK);
        for next in self.rows.by_ref() {
            match next {
                Ok(row) if row.cells.iter().all(|c| c.trim().is_empty()) => continue,
                Ok(row) => rows.push(row),
                Err(TabularError::Row { row, reason }) => unreadable.push(RowProblem {
                    row,
                    column: String::new(),
                    field: String::new(),
                    value: String::new(),
                    code: "unreadable_row".into(),
                    reason_zh: format!("本行无法读取：{reason}"),
                    reason_en: format!("the row cannot be read: {reason}"),
                    warning: false,
                }),
                Err(e) => return Err(e),
            }
            if rows.len() == CHUNK {
                break;
            }
        }
        if rows.is_empty() && unreadable.is_empty() {
            return Ok(None);
        }
        let read = rows.iter().map(|row| self.read(row)).collect();
        Ok(Some(ReadChunk {
            unreadable,
            rows,
            read,
        }))
    }

    /// A row read into its input; repeated rows of the file are invalid.
    fn read(&mut self, row: &Row) -> Result<RowInput, Plan> {
        let columns = self.sheet.columns();
        match columns.read(row.number, &row.cells) {
            (input, mut problems) if !problems.is_empty() => {
                let rules = self.sheet.rules();
                let more =
                    columns.validation_problems(row.number, &row.cells, &input, &rules, &problems);
                problems.extend(more);
                Err(Plan::Invalid(problems))
            }
            (input, _) => {
                let (field, key) = row_key(&input);
                match self.seen.get(&key) {
                    Some(first) => Err(self.sheet.invalid(row, field, repeated_row(*first))),
                    None => {
                        self.seen.insert(key, row.number);
                        Ok(input)
                    }
                }
            }
        }
    }
}

/// Counts a planned row and reports its problems; true when it is to be written.
fn tally(
    counts: &mut ImportCounts,
    plan: &Plan,
    skip_suspects: bool,
    mut note: impl FnMut(RowProblem),
) -> bool {
    match plan {
        Plan::Invalid(problems) => {
            counts.invalid += 1;
            for p in problems {
                note(p.clone());
            }
            false
        }
        Plan::Unchanged => {
            counts.unchanged += 1;
            false
        }
        Plan::NewCustomer { data, suspect, .. } => {
            if let Some(p) = suspect {
                counts.duplicate_suspects += 1;
                note(p.clone());
                if skip_suspects {
                    counts.skipped += 1;
                    return false;
                }
            }
            counts.new += 1;
            if !data.missing_fields.is_empty() {
                counts.follow_up += 1;
            }
            true
        }
        Plan::UpdateCustomer {
            before,
            data,
            contact,
        } => {
            if let ContactPlan::Insert(_, Some(p)) = contact {
                counts.duplicate_suspects += 1;
                note((**p).clone());
            }
            counts.updated += 1;
            let missing = data
                .as_ref()
                .map_or(&before.missing_fields, |d| &d.missing_fields);
            if !missing.is_empty() {
                counts.follow_up += 1;
            }
            true
        }
        Plan::Contact { plan, .. } => match plan {
            ContactPlan::Insert(_, suspect) => {
                if let Some(p) = suspect {
                    counts.duplicate_suspects += 1;
                    note((**p).clone());
                    if skip_suspects {
                        counts.skipped += 1;
                        return false;
                    }
                }
                counts.new += 1;
                true
            }
            ContactPlan::Update(..) => {
                counts.updated += 1;
                true
            }
            ContactPlan::None | ContactPlan::Same => {
                counts.unchanged += 1;
                false
            }
        },
        Plan::NewOrder { .. } | Plan::NewInteraction { .. } => {
            counts.new += 1;
            true
        }
        Plan::UpdateOrder { .. } => {
            counts.updated += 1;
            true
        }
    }
}

/// Writes a chunk's plans: its customers in multi-row statements (updates
/// first: one may free a USCC or code that a new row takes), then each
/// row's contact, order or interaction.
async fn write(
    w: &mut ImportWriter,
    plans: Vec<Plan>,
    importer: &Importer,
) -> Result<(), ApiError> {
    let new_owner = Owner {
        owner_id: importer.user_id,
        team: importer.team.clone(),
    };
    let mut updates: Vec<(Box<Customer>, Box<CustomerData>, Owner)> = Vec::new();
    let mut inserts: Vec<(Box<CustomerData>, Option<ContactData>)> = Vec::new();
    let mut contacts: Vec<(i64, ContactPlan)> = Vec::new();
    for plan in plans {
        match plan {
            Plan::Invalid(_) | Plan::Unchanged => {}
            Plan::NewCustomer { data, contact, .. } => inserts.push((data, contact)),
            Plan::UpdateCustomer {
                before,
                data,
                contact,
            } => {
                contacts.push((before.id, contact));
                if let Some(data) = data {
                    let owner = Owner {
                        owner_id: before.owner_id,
                        team: before.team.clone(),
                    };
                    updates.push((before, data, owner));
                }
            }
            Plan::Contact { customer_id, plan } => contacts.push((customer_id, plan)),
            // A file of orders or interactions: nothing else in the chunk.
            Plan::NewOrder { customer_id, data } => {
                w.insert_order(customer_id, &data).await?;
            }
            Plan::UpdateOrder { before, data } => {
                w.update_order(&before, &data).await?;
            }
            Plan::NewInteraction { customer_id, data } => {
                w.insert_interaction(customer_id, &data, importer.user_id)
                    .await?;
            }
        }
    }
    let rows: Vec<(&Customer, &CustomerData, &Owner)> =
        updates.iter().map(|(b, d, o)| (&**b, &**d, o)).collect();
    w.update_customers(&rows, importer.user_id).await?;
    let rows: Vec<(&CustomerData, &Owner)> =
        inserts.iter().map(|(d, _)| (&**d, &new_owner)).collect();
    let ids = w.insert_customers(&rows, importer.user_id).await?;
    for (id, (_, contact)) in ids.into_iter().zip(inserts) {
        if let Some(contact) = contact {
            w.insert_contact(id, &contact, false).await?;
        }
    }
    for (customer_id, plan) in contacts {
        write_contact(w, customer_id, plan).await?;
    }
    Ok(())
}

async fn write_contact(
    w: &mut ImportWriter,
    customer_id: i64,
    plan: ContactPlan,
) -> Result<(), ApiError> {
    match plan {
        ContactPlan::Insert(d, _) => {
            w.insert_contact(customer_id, &d, true).await?;
        }
        ContactPlan::Update(before, d) => {
            w.update_contact(&before, &d).await?;
        }
        ContactPlan::None | ContactPlan::Same => {}
    }
    Ok(())
}

/// The stored customer as the input a form would send.
fn input_of(c: &Customer) -> CustomerInput {
    crate::api::dto::CustomerWrite::from(c).into()
}

/// Records a row may update (a second row about the same one is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Claimed {
    Customer,
    Contact,
    Order,
}

/// New rows in a chunk from which an import reads every stored name into
/// memory to find abbreviations (~3 s and ~300 MB at 1M customers, then
/// microseconds a name); below, each name is looked up in the database
/// (about a millisecond a name), as on entry.
const NEW_ROWS_FOR_IN_MEMORY_NAMES: usize = 200;

/// Names an import looks up in the database, a few per chunk, before it
/// reads every stored name into memory after all: by then the lookups have
/// cost about what reading them does, so a file of few new rows in each
/// chunk but many in all never pays more than twice the better choice.
const NAMES_LOOKED_UP_BEFORE_READING_ALL: usize = 2_000;

/// Whether an import reads every stored name into memory before finding
/// the abbreviations of a chunk's `new_names`, having looked up
/// `looked_up` names in the database so far.
fn reads_all_stored_names(new_names: usize, looked_up: usize) -> bool {
    new_names >= NEW_ROWS_FOR_IN_MEMORY_NAMES
        || looked_up + new_names > NAMES_LOOKED_UP_BEFORE_READING_ALL
}

/// Stored customers whose names the new rows' names (`fulls`, normalized)
/// abbreviate or are abbreviated by, by name.
async fn abbreviations_of<L: Lookup>(
    cx: &mut Context<'_>,
    lookup: &mut L,
    fulls: &[String],
) -> Result<BTreeMap<String, Vec<(CompanyName, SoundMatch)>>, ApiError> {
    let mut out = BTreeMap::new();
    if fulls.is_empty() {
        return Ok(out);
    }
    if cx.stored_abbreviations.is_none() && !reads_all_stored_names(fulls.len(), cx.names_looked_up)
    {
        cx.names_looked_up += fulls.len();
        return abbreviations_in_database(lookup, fulls).await;
    }
    let index = match &mut cx.stored_abbreviations {
        Some(index) => index,
        empty => {
            let mut index = AbbreviationIndex::default();
            for (id, full) in lookup.name_keys().await? {
                index.insert(id, &full, &company::core_of_full(&full));
            }
            empty.insert(index)
        }
    };
    let wanted: Vec<(&String, Vec<i64>)> = fulls
        .iter()
        .map(|full| {
            let core = company::core_of_full(full);
            let ids = index
                .abbreviated_by(&core, COMPARED_PER_SOUND)
                .into_iter()
                .chain(index.abbreviations_in(full, COMPARED_PER_SOUND))
                .copied()
                .collect();
            (full, ids)
        })
        .collect();
    let mut ids: Vec<i64> = wanted.iter().flat_map(|(_, ids)| ids).copied().collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(out);
    }
    let found: HashMap<i64, SoundMatch> = lookup
        .sound_matches_in(&ids)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    for (full, ids) in wanted {
        let matches: Vec<(CompanyName, SoundMatch)> = ids
            .iter()
            .filter_map(|id| found.get(id))
            .map(|m| (m.company_name(), m.clone()))
            .collect();
        if !matches.is_empty() {
            out.insert(full.clone(), matches);
        }
    }
    Ok(out)
}

/// [`abbreviations_of`] a few names, looked up in the database
/// (`Store::likely_duplicates` does the same for one name).
async fn abbreviations_in_database<L: Lookup>(
    lookup: &mut L,
    fulls: &[String],
) -> Result<BTreeMap<String, Vec<(CompanyName, SoundMatch)>>, ApiError> {
    let found = lookup.abbreviation_candidates(fulls).await?;
    Ok(fulls
        .iter()
        .zip(found)
        .filter(|(_, matches)| !matches.is_empty())
        .map(|(full, matches)| {
            let named = matches.into_iter().map(|m| (m.company_name(), m));
            (full.clone(), named.collect())
        })
        .collect())
}

/// Plans every row of a chunk (`read` by [`RowReader`]) against what is
/// stored (on `lookup`).
async fn plan_chunk<L: Lookup>(
    cx: &mut Context<'_>,
    chunk: &[Row],
    read: Vec<Result<RowInput, Plan>>,
    lookup: &mut L,
) -> Result<Vec<Plan>, ApiError> {
    // Look up what the rows name: codes first; a USCC only where the code
    // does not already settle it; exact names of rows with neither; and
    // normalized names only of rows that will be new (likely duplicates).
    let customer_rows = || {
        read.iter().flatten().filter_map(|r| match r {
            RowInput::Customer { input, .. } => Some(input),
            _ => None,
        })
    };
    let upper = |s: &String| clean(s).to_ascii_uppercase();
    let mut codes: Vec<String> = read
        .iter()
        .flatten()
        .filter_map(|r| match r {
            RowInput::Customer { input, .. } => input.code.as_ref().map(upper),
            RowInput::Contact { customer_code, .. }
            | RowInput::Order { customer_code, .. }
            | RowInput::Interaction { customer_code, .. } => Some(customer_code.clone()),
        })
        .collect();
    codes.sort();
    codes.dedup();
    let by_code: BTreeMap<String, Customer> = lookup
        .customers_where_in("code", &codes)
        .await?
        .into_iter()
        .map(|c| (c.code.clone(), c))
        .collect();
    let settled_by_code = |input: &CustomerInput| {
        input
            .code
            .as_ref()
            .and_then(|c| by_code.get(&upper(c)))
            .is_some_and(|c| {
                input.uscc.is_none()
                    || c.uscc.as_deref() == input.uscc.as_ref().map(upper).as_deref()
            })
    };
    let mut usccs: Vec<String> = customer_rows()
        .filter(|i| !settled_by_code(i))
        .filter_map(|i| i.uscc.as_ref().map(upper))
        .collect();
    usccs.sort();
    usccs.dedup();
    let by_uscc: BTreeMap<String, Customer> = match usccs.is_empty() {
        true => BTreeMap::new(),
        false => lookup
            .customers_where_in("uscc", &usccs)
            .await?
            .into_iter()
            .filter_map(|c| Some((c.uscc.clone()?, c)))
            .collect(),
    };
    let mut names: Vec<String> = customer_rows()
        .filter(|i| i.code.is_none() && i.uscc.is_none())
        .filter_map(|i| i.name.as_deref().map(clean))
        .collect();
    names.sort();
    names.dedup();
    let mut by_name: BTreeMap<String, Vec<Customer>> = BTreeMap::new();
    if !names.is_empty() {
        for c in lookup.customers_where_in("name", &names).await? {
            by_name.entry(c.name.clone()).or_default().push(c);
        }
    }
    let will_be_new = |i: &CustomerInput| {
        let found = i
            .code
            .as_ref()
            .is_some_and(|c| by_code.contains_key(&upper(c)))
            || i.uscc
                .as_ref()
                .is_some_and(|u| by_uscc.contains_key(&upper(u)))
            || (i.code.is_none()
                && i.uscc.is_none()
                && i.name
                    .as_deref()
                    .is_some_and(|n| by_name.contains_key(&clean(n))));
        !found
    };
    // Which rows will make a new customer, decided once per row.
    let new_rows: Vec<Option<&RowInput>> = read
        .iter()
        .map(|r| match r {
            Ok(row @ RowInput::Customer { input, .. }) if will_be_new(input) => Some(row),
            _ => None,
        })
        .collect();
    // The names of the rows that will be new, normalized once (as
    // `plan_customer` names a new customer: its name validated).
    let companies: Vec<Option<CompanyName>> = new_rows
        .iter()
        .map(|r| match r {
            Some(RowInput::Customer { input, .. }) => {
                input.name.as_deref().map(|n| company::normalize(&clean(n)))
            }
            _ => None,
        })
        .collect();
    let keys_of_new_names = |key: fn(&CompanyName) -> &String| {
        let mut keys: Vec<String> = companies
            .iter()
            .flatten()
            .map(key)
            .filter(|k| !k.is_empty())
            .cloned()
            .collect();
        keys.sort();
        keys.dedup();
        keys
    };
    let name_keys = keys_of_new_names(|n| &n.full);
    // Stored customers under the same normalized name: likely duplicates of new rows.
    let mut by_key: BTreeMap<String, Customer> = BTreeMap::new();
    if !name_keys.is_empty() {
        for c in lookup.customers_where_in("name_key", &name_keys).await? {
            let key = company::full_name(&c.name);
            by_key.entry(key).or_insert(c);
        }
    }
    // Stored customers whose name sounds like a new row's (the same core name,
    // or characters that sound alike): likely duplicates when the names
    // compare close enough.
    let sounds = keys_of_new_names(|n| &n.pinyin);
    let mut by_sound: BTreeMap<String, Vec<(CompanyName, SoundMatch)>> = BTreeMap::new();
    if !sounds.is_empty() {
        for c in lookup.customers_by_sound(&sounds).await? {
            let name = c.company_name();
            by_sound
                .entry(c.name_sound.clone())
                .or_default()
                .push((name, c));
        }
    }
    // Stored customers whose name a new row's abbreviates, or is abbreviated by.
    let by_abbreviation = abbreviations_of(cx, lookup, &name_keys).await?;
    // Stored customers with a contact phone of a new row: likely duplicates too.
    let mut phones: Vec<String> = new_rows
        .iter()
        .flatten()
        .filter_map(|r| match r {
            RowInput::Customer {
                contact: Some(c), ..
            } => Some(c),
            _ => None,
        })
        .flat_map(|c| [c.mobile.as_deref(), c.landline.as_deref()])
        .flatten()
        .filter_map(standard_phone)
        .collect();
    phones.sort();
    phones.dedup();
    let by_phone: BTreeMap<String, Customer> = match phones.is_empty() {
        true => BTreeMap::new(),
        false => lookup
            .customers_by_phone(&phones)
            .await?
            .into_iter()
            .collect(),
    };
    let known = Known {
        by_name: &by_key,
        by_sound: &by_sound,
        by_abbreviation: &by_abbreviation,
        by_phone: &by_phone,
    };
    let mut ids: Vec<i64> = by_code
        .values()
        .chain(by_uscc.values())
        .chain(by_name.values().flatten())
        .map(|c| c.id)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut contacts: HashMap<i64, Vec<Contact>> = HashMap::new();
    let mut orders: HashMap<i64, Vec<Order>> = HashMap::new();
    let mut interactions: HashMap<i64, Vec<Interaction>> = HashMap::new();
    if !ids.is_empty() {
        match cx.sheet.kind {
            // A customers file without contact columns compares no contacts.
            ImportKind::Customers
                if !cx
                    .sheet
                    .chosen
                    .iter()
                    .any(|(_, t)| t.key.starts_with("contact.")) => {}
            ImportKind::Customers | ImportKind::Contacts => {
                for c in lookup.contacts_of(&ids).await? {
                    contacts.entry(c.customer_id).or_default().push(c);
                }
            }
            ImportKind::Orders => {
                for o in lookup.orders_of(&ids).await? {
                    orders.entry(o.customer_id).or_default().push(o);
                }
            }
            ImportKind::Interactions => {
                for i in lookup.interactions_of(&ids).await? {
                    interactions.entry(i.customer_id).or_default().push(i);
                }
            }
        }
    }
    let no_contacts: Vec<Contact> = Vec::new();
    let mut plans = Vec::with_capacity(chunk.len());
    for ((row, parsed), company) in chunk.iter().zip(read).zip(companies) {
        let input = match parsed {
            Ok(input) => input,
            Err(plan) => {
                plans.push(plan);
                continue;
            }
        };
        let plan = match input {
            RowInput::Customer { input, contact } => {
                let found_code = input.code.as_ref().and_then(|c| by_code.get(&upper(c)));
                let found_uscc = input.uscc.as_ref().and_then(|u| by_uscc.get(&upper(u)));
                let existing = match (found_code, found_uscc) {
                    (Some(a), Some(b)) if a.id != b.id => {
                        plans.push(cx.invalid(
                            row,
                            "uscc",
                            Reason::Other {
                                zh: "该统一社会信用代码已属于另一位客户".into(),
                                en: "this USCC belongs to another customer".into(),
                            },
                        ));
                        continue;
                    }
                    (Some(a), _) => Some(a),
                    // A code the store does not know, with the USCC of a stored
                    // customer: never a silent change of that customer's code.
                    (None, Some(b)) if input.code.is_some() => {
                        let who = if cx.importer.may(
                            Permission::CustomerRead,
                            b.owner_id,
                            b.team.as_deref(),
                        ) {
                            b.code.clone()
                        } else {
                            "（他人负责的客户 / a customer of another team）".into()
                        };
                        plans.push(cx.invalid(
                            row,
                            "code",
                            Reason::Other {
                                zh: format!("该统一社会信用代码属于客户 {who}，与本行的客户编号不符；请改用其编号，或不导入编号列"),
                                en: format!("the USCC belongs to customer {who}, not to this code: use its code, or leave the code column out"),
                            },
                        ));
                        continue;
                    }
                    (None, Some(b)) => Some(b),
                    // Neither code nor USCC: the same name is the same customer.
                    (None, None) if input.code.is_none() && input.uscc.is_none() => {
                        let name = input.name.as_deref().map(clean).unwrap_or_default();
                        match by_name.get(&name).map(Vec::as_slice) {
                            None | Some([]) => None,
                            Some([one]) => Some(one),
                            Some(_) => {
                                plans.push(cx.invalid(
                                    row,
                                    "name",
                                    Reason::Other {
                                        zh: "有多位客户叫这个名称，请填写客户编号或统一社会信用代码".into(),
                                        en: "several customers have this name: give the customer code or USCC".into(),
                                    },
                                ));
                                continue;
                            }
                        }
                    }
                    (None, None) => None,
                };
                let contacts_of = existing
                    .and_then(|c| contacts.get(&c.id))
                    .unwrap_or(&no_contacts);
                let read = CustomerRow {
                    input,
                    contact,
                    company,
                };
                plan_customer(cx, row, read, existing, contacts_of, &known)
            }
            RowInput::Contact {
                customer_code,
                input,
            } => match reachable(cx, &by_code, &customer_code, Permission::RecordWrite) {
                None => cx.invalid(row, "customer_code", unknown_customer()),
                Some(c) => {
                    let existing = contacts.get(&c.id).unwrap_or(&no_contacts);
                    match plan_contact(cx, row, "", Some(input), existing) {
                        Err(problems) => Plan::Invalid(problems),
                        Ok(plan) => {
                            let first = match &plan {
                                ContactPlan::Update(before, _) => {
                                    cx.claim(Claimed::Contact, before.id, row.number)
                                }
                                _ => None,
                            };
                            match first {
                                Some(first) => cx.invalid(row, "", repeated_row(first)),
                                None => Plan::Contact {
                                    customer_id: c.id,
                                    plan,
                                },
                            }
                        }
                    }
                }
            },
            RowInput::Order {
                customer_code,
                input,
            } => match reachable(cx, &by_code, &customer_code, Permission::RecordWrite) {
                None => cx.invalid(row, "customer_code", unknown_customer()),
                Some(c) => plan_order(cx, row, c.id, input, orders.get(&c.id)),
            },
            RowInput::Interaction {
                customer_code,
                input,
            } => plan_interaction(cx, row, &by_code, &customer_code, input, &interactions),
        };
        plans.push(plan);
    }
    Ok(plans)
}

/// The customer with `code` if the importer may do `p` on it.
fn reachable<'a>(
    cx: &Context<'_>,
    by_code: &'a BTreeMap<String, Customer>,
    code: &str,
    p: Permission,
) -> Option<&'a Customer> {
    by_code
        .get(code)
        .filter(|c| cx.importer.may(p, c.owner_id, c.team.as_deref()))
}

/// A customer row as read: the customer, its contact, its name normalized.
struct CustomerRow {
    input: CustomerInput,
    contact: Option<ContactInput>,
    company: Option<CompanyName>,
}

fn plan_customer(
    cx: &mut Context<'_>,
    row: &Row,
    read: CustomerRow,
    existing: Option<&Customer>,
    contacts: &[Contact],
    known: &Known<'_>,
) -> Plan {
    let CustomerRow {
        input,
        contact,
        company,
    } = read;
    match existing {
        Some(before) => {
            if !cx.importer.may(
                Permission::CustomerUpdate,
                before.owner_id,
                before.team.as_deref(),
            ) {
                let field = match (&input.code, &input.uscc) {
                    (Some(_), _) => "code",
                    (None, Some(_)) => "uscc",
                    _ => "name",
                };
                return cx.invalid(
                    row,
                    field,
                    Reason::Other {
                        zh: "该客户已存在，但不在您可修改的范围内".into(),
                        en: "this customer exists but is not one you may change".into(),
                    },
                );
            }
            if let Some(first) = cx.claim(Claimed::Customer, before.id, row.number) {
                return cx.invalid(row, "", repeated_row(first));
            }
            let mut merged = input_of(before);
            overlay_customer(&mut merged, &input);
            let data = match merged.validate_keeping_missing(&cx.rules()) {
                Ok(d) => d,
                Err(e) => {
                    return Plan::Invalid(cx.columns().problems(row.number, &row.cells, "", &e))
                }
            };
            let contact = match plan_contact(cx, row, "contact.", contact, contacts) {
                Ok(c) => c,
                Err(problems) => return Plan::Invalid(problems),
            };
            let mut data = data;
            data.fill_region_from_landline(contact.landline());
            let stored = before.data();
            let defs = &cx.sheet.defs;
            if let Some(problems) = cx.not_editable(row, "", |rights| {
                crate::privacy::check_customer_write(rights, defs, Some(&stored), &data)
            }) {
                return Plan::Invalid(problems);
            }
            let data = (data != stored).then(|| Box::new(data));
            if data.is_none() && !contact.changes() {
                Plan::Unchanged
            } else {
                Plan::UpdateCustomer {
                    before: Box::new(before.clone()),
                    data,
                    contact,
                }
            }
        }
        None => {
            let mut problems = Vec::new();
            let data = match input.validate_keeping_missing(&cx.rules()) {
                Ok(d) => Some(d),
                Err(e) => {
                    problems.extend(cx.columns().problems(row.number, &row.cells, "", &e));
                    None
                }
            };
            let contact = match contact.map(|c| c.validate()) {
                None => None,
                Some(Ok(c)) => Some(c),
                Some(Err(e)) => {
                    problems.extend(
                        cx.columns()
                            .problems(row.number, &row.cells, "contact.", &e),
                    );
                    None
                }
            };
            let Some(mut data) = data.filter(|_| problems.is_empty()) else {
                return Plan::Invalid(problems);
            };
            data.fill_region_from_landline(contact.as_ref().and_then(|c| c.landline.as_deref()));
            let defs = &cx.sheet.defs;
            let refused = [
                cx.not_editable(row, "", |rights| {
                    crate::privacy::check_customer_write(rights, defs, None, &data)
                }),
                contact.as_ref().and_then(|c| {
                    cx.not_editable(row, "contact.", |rights| {
                        crate::privacy::check_contact_write(rights, None, c, "")
                    })
                }),
            ];
            let refused: Vec<RowProblem> = refused.into_iter().flatten().flatten().collect();
            if !refused.is_empty() {
                return Plan::Invalid(refused);
            }
            let name = company.unwrap_or_else(|| company::normalize(&data.name));
            let key = name.full.clone();
            let phones: Vec<String> = contact
                .iter()
                .flat_map(|c| [c.mobile.as_deref(), c.landline.as_deref()])
                .flatten()
                .filter_map(standard_phone)
                .collect();
            let suspect = suspect_of(cx, row, &key, known.by_name.get(&key))
                .or_else(|| {
                    let (phone, c) = phones
                        .iter()
                        .find_map(|p| Some((p, known.by_phone.get(p)?)))?;
                    suspect_by_phone(cx, row, phone, c)
                })
                .or_else(|| {
                    let stored = (known.by_sound.get(&name.pinyin).into_iter())
                        .chain(known.by_abbreviation.get(&name.full))
                        .flatten();
                    let index = &cx.new_abbreviations;
                    let earlier = (cx.new_sounds.get(&name.pinyin).into_iter())
                        .chain(index.abbreviated_by(&name.core, COMPARED_PER_SOUND))
                        .chain(index.abbreviations_in(&name.full, COMPARED_PER_SOUND))
                        .map(|(r, other)| (*r, other));
                    suspect_by_close_name(cx, row, &name, stored, earlier)
                });
            if !key.is_empty() {
                cx.new_names.entry(key).or_insert(row.number);
            }
            cx.new_abbreviations
                .insert((row.number, name.clone()), &name.full, &name.core);
            if !name.pinyin.is_empty() {
                cx.new_sounds
                    .entry(name.pinyin.clone())
                    .or_insert((row.number, name));
            }
            Plan::NewCustomer {
                data: Box::new(data),
                contact,
                suspect,
            }
        }
    }
}

/// Stored customers a new row may duplicate: by normalized name, by how
/// the name sounds, by the names its core abbreviates, by a contact's phone.
struct Known<'a> {
    by_name: &'a BTreeMap<String, Customer>,
    by_sound: &'a BTreeMap<String, Vec<(CompanyName, SoundMatch)>>,
    /// A new row's normalized name → stored names it abbreviates or is
    /// abbreviated by.
    by_abbreviation: &'a BTreeMap<String, Vec<(CompanyName, SoundMatch)>>,
    by_phone: &'a BTreeMap<String, Customer>,
}

/// A phone as contacts store it (mobile digits, landline `010-12345678`).
fn standard_phone(raw: &str) -> Option<String> {
    kehu_core::ident::Phone::parse(raw)
        .ok()
        .map(|p| p.formatted())
}

/// The customer's code, or a placeholder when the importer may not see it.
fn shown_code(cx: &Context<'_>, c: &Customer) -> String {
    shown(cx, &c.code, c.owner_id, c.team.as_deref())
}

/// A customer's code, or a placeholder when the importer may not see it.
fn shown(cx: &Context<'_>, code: &str, owner_id: Option<i64>, team: Option<&str>) -> String {
    if cx.importer.may(Permission::CustomerRead, owner_id, team) {
        code.to_string()
    } else {
        "（他人负责的客户 / a customer of another team）".to_string()
    }
}

/// A warning when a new customer's contact has a stored customer's phone.
fn suspect_by_phone(cx: &Context<'_>, row: &Row, phone: &str, c: &Customer) -> Option<RowProblem> {
    let who = shown_code(cx, c);
    // The phone is personal: masked as the contact's own would be.
    let phone = kehu_core::privacy::mask_phone(phone);
    let reason = Reason::Other {
        zh: format!("可能与已有客户 {who} 重复（联系电话 {phone} 相同）"),
        en: format!("likely the same company as existing customer {who} (same phone {phone})"),
    };
    let mut p = cx
        .columns()
        .problem(row.number, &row.cells, "name", &reason, true);
    p.code = "duplicate_suspect".into();
    Some(p)
}

/// A warning when a new customer's name compares close enough to a stored
/// customer's or an earlier new row's that was found by sound or as an
/// abbreviation (the same core name with business words left out,
/// characters that sound alike, an abbreviation).
fn suspect_by_close_name<'a>(
    cx: &Context<'_>,
    row: &Row,
    name: &CompanyName,
    stored: impl Iterator<Item = &'a (CompanyName, SoundMatch)>,
    earlier: impl Iterator<Item = (u64, &'a CompanyName)>,
) -> Option<RowProblem> {
    let best = stored
        .filter_map(|(other, c)| Some((company::close_names(name, other)?, c)))
        .max_by(|a, b| a.0 .0.total_cmp(&b.0 .0));
    let reason = if let Some(((_, how), c)) = best {
        let who = shown(cx, &c.code, c.owner_id, c.team.as_deref());
        Reason::Other {
            zh: format!(
                "可能与已有客户 {who} 重复（名称相近：{}）",
                how.describe_zh()
            ),
            en: format!(
                "likely the same company as existing customer {who} (close name: {})",
                how.describe()
            ),
        }
    } else {
        let (first, how) = earlier
            .filter_map(|(r, other)| Some((r, company::close_names(name, other)?.1)))
            .min_by_key(|(r, _)| *r)?;
        Reason::Other {
            zh: format!(
                "可能与第 {first} 行是同一家公司（名称相近：{}）",
                how.describe_zh()
            ),
            en: format!(
                "likely the same company as row {first} (close name: {})",
                how.describe()
            ),
        }
    };
    let mut p = cx
        .columns()
        .problem(row.number, &row.cells, "name", &reason, true);
    p.code = "duplicate_suspect".into();
    Some(p)
}

/// A warning when a new customer's name, normalized (legal form, places,
/// brackets and width aside), is that of a stored customer or of an earlier
/// new row of the file.
fn suspect_of(
    cx: &Context<'_>,
    row: &Row,
    key: &str,
    stored: Option<&Customer>,
) -> Option<RowProblem> {
    if key.is_empty() {
        return None;
    }
    let reason = if let Some(c) = stored {
        let who = shown_code(cx, c);
        Reason::Other {
            zh: format!("可能与已有客户 {who} 重复（名称相同）"),
            en: format!("likely the same company as existing customer {who} (same name)"),
        }
    } else if let Some(first) = cx.new_names.get(key) {
        Reason::Other {
            zh: format!("可能与第 {first} 行是同一家公司（名称相同）"),
            en: format!("likely the same company as row {first} (same name)"),
        }
    } else {
        return None;
    };
    let mut p = cx
        .columns()
        .problem(row.number, &row.cells, "name", &reason, true);
    p.code = "duplicate_suspect".into();
    Some(p)
}

/// A row's contact against the customer's stored contacts (same name =
/// same person).
fn plan_contact(
    cx: &Context<'_>,
    row: &Row,
    prefix: &str,
    contact: Option<ContactInput>,
    existing: &[Contact],
) -> Result<ContactPlan, Vec<RowProblem>> {
    let Some(input) = contact else {
        return Ok(ContactPlan::None);
    };
    let columns = cx.columns();
    let invalid = |e| columns.problems(row.number, &row.cells, prefix, &e);
    // The row's own values first: standardized, phones where they belong
    // (a mobile in the landline column is the mobile).
    let given = input.validate().map_err(invalid)?;
    let same = existing.iter().find(|c| c.name == given.name);
    let refused = |before: Option<&Contact>, d: &ContactData| {
        cx.not_editable(row, prefix, |rights| {
            crate::privacy::check_contact_write(rights, before, d, "")
        })
    };
    let Some(before) = same else {
        if let Some(problems) = refused(None, &given) {
            return Err(problems);
        }
        let suspect = contact_suspect(cx, row, prefix, &given, existing);
        return Ok(ContactPlan::Insert(given, suspect.map(Box::new)));
    };
    let stored = before.data();
    let mut merged = contact_input_of_data(&stored);
    overlay_contact(&mut merged, &contact_input_of_data(&given));
    // A template row names the primary contact; a contacts file does not change who is primary.
    merged.is_primary = input.is_primary.or(Some(before.is_primary));
    match merged.validate() {
        Ok(d) if d == stored => Ok(ContactPlan::Same),
        Ok(d) => match refused(Some(before), &d) {
            Some(problems) => Err(problems),
            None => Ok(ContactPlan::Update(Box::new(before.clone()), d)),
        },
        Err(e) => Err(invalid(e)),
    }
}

/// A warning when a new contact is likely one of the customer's stored
/// contacts under another name (the same mobile, e-mail or ID number, or a
/// name that sounds alike with the same landline). The stored name is
/// quoted masked, as every personal value in a problem list.
fn contact_suspect(
    cx: &Context<'_>,
    row: &Row,
    prefix: &str,
    given: &ContactData,
    existing: &[Contact],
) -> Option<RowProblem> {
    let (pair, like) = crate::contact_duplicates::likely_same(given, existing)?;
    let name = kehu_core::privacy::mask(kehu_core::privacy::MaskKind::Name, &like.name);
    let (zh, en) = crate::contact_duplicates::evidence_text(&pair);
    let reason = Reason::Other {
        zh: format!("可能与已有联系人 {name} 是同一人（{zh}）"),
        en: format!("likely the same person as stored contact {name} ({en})"),
    };
    let mut p = cx.columns().problem(
        row.number,
        &row.cells,
        &format!("{prefix}name"),
        &reason,
        true,
    );
    p.code = "duplicate_suspect".into();
    Some(p)
}

/// Validated contact values as an input (absent values stay absent).
pub(crate) fn contact_input_of_data(d: &ContactData) -> ContactInput {
    ContactInput {
        name: Some(d.name.clone()),
        title: d.title.clone(),
        decision_role: d.decision_role.clone(),
        landline: d.landline.clone(),
        mobile: d.mobile.clone(),
        email: d.email.clone(),
        id_number: d.id_number.clone(),
        is_primary: Some(d.is_primary),
        notes: d.notes.clone(),
    }
}

fn plan_order(
    cx: &mut Context<'_>,
    row: &Row,
    customer_id: i64,
    input: OrderInput,
    existing: Option<&Vec<Order>>,
) -> Plan {
    let data = match input.validate(cx.sheet.today) {
        Ok(d) => d,
        Err(e) => return Plan::Invalid(cx.columns().problems(row.number, &row.cells, "", &e)),
    };
    let existing = existing.map(Vec::as_slice).unwrap_or_default();
    let same_key = |o: &&Order| match &data.order_no {
        Some(no) => o.order_no.as_deref() == Some(no.as_str()),
        None => {
            o.ordered_on == data.ordered_on
                && o.amount_fen == data.amount.get()
                && o.product_line == data.product_line
        }
    };
    let order_fields = kehu_core::privacy::ORDER_RECORD_FIELDS;
    let refused = |cx: &Context<'_>, before: Option<&Order>, d: &OrderData| {
        cx.not_editable(row, "", |rights| {
            let before = before.map(|b| b as &dyn crate::privacy::RecordValues);
            crate::privacy::check_record_write(rights, order_fields, before, d, "")
        })
    };
    match existing.iter().find(same_key) {
        None => match refused(cx, None, &data) {
            Some(problems) => Plan::Invalid(problems),
            None => Plan::NewOrder { customer_id, data },
        },
        Some(before) => {
            let stored = OrderData {
                order_no: before.order_no.clone(),
                ordered_on: before.ordered_on,
                amount: kehu_core::Fen::new(before.amount_fen).unwrap_or(data.amount),
                product_line: before.product_line.clone(),
                notes: before.notes.clone(),
            };
            // Empty cells keep the stored values.
            let merged = OrderData {
                product_line: data.product_line.clone().or(stored.product_line.clone()),
                notes: data.notes.clone().or(stored.notes.clone()),
                ..data
            };
            if merged == stored {
                Plan::Unchanged
            } else if let Some(problems) = refused(cx, Some(before), &merged) {
                Plan::Invalid(problems)
            } else if let Some(first) = cx.claim(Claimed::Order, before.id, row.number) {
                cx.invalid(row, "", repeated_row(first))
            } else {
                Plan::UpdateOrder {
                    before: before.clone(),
                    data: merged,
                }
            }
        }
    }
}

fn plan_interaction(
    cx: &Context<'_>,
    row: &Row,
    by_code: &BTreeMap<String, Customer>,
    customer_code: &str,
    input: InteractionInput,
    interactions: &HashMap<i64, Vec<Interaction>>,
) -> Plan {
    let data = match input.validate(cx.sheet.today) {
        Ok(d) => d,
        Err(e) => return Plan::Invalid(cx.columns().problems(row.number, &row.cells, "", &e)),
    };
    // 客服 logs service records and complaints only.
    let permission = if cx.importer.has(Permission::InteractionWrite) {
        Permission::InteractionWrite
    } else {
        if !data.kind.is_ticket() {
            return cx.invalid(
                row,
                "kind",
                Reason::Other {
                    zh: format!(
                        "您只能导入服务和投诉记录，不能导入“{}”",
                        data.kind.label_zh()
                    ),
                    en: format!(
                        "you may import service records and complaints only, not {}",
                        data.kind.key()
                    ),
                },
            );
        }
        Permission::ServiceRecordWrite
    };
    let Some(c) = reachable(cx, by_code, customer_code, permission) else {
        return cx.invalid(row, "customer_code", unknown_customer());
    };
    let same = interactions.get(&c.id).is_some_and(|list| {
        list.iter().any(|i| {
            i.occurred_on == data.occurred_on
                && InteractionKind::parse(&i.kind).ok() == Some(data.kind)
                && i.summary == data.summary
        })
    });
    let fields = kehu_core::privacy::INTERACTION_RECORD_FIELDS;
    if same {
        Plan::Unchanged
    } else if let Some(problems) = cx.not_editable(row, "", |rights| {
        crate::privacy::check_record_write(rights, fields, None, &data, "")
    }) {
        Plan::Invalid(problems)
    } else {
        Plan::NewInteraction {
            customer_id: c.id,
            data,
        }
    }
}

/// A dry run over `table`: reads only; the report says what applying would do.
pub async fn dry_run(
    state: &AppState,
    table: Table,
    options: &ImportOptions,
    importer: &Importer,
    sink: &mut dyn ProblemSink,
) -> Result<ImportReport, ApiError> {
    importer.check(options.kind)?;
    run_rows(state, table, options, importer, None, sink).await
}

/// Applies `table` in one transaction, recorded as import `existing` (a
/// dry run being applied) or a new record. With `abort`, nothing is written
/// when any row is invalid (the report's status says `refused`). Returns
/// the report and the customers it changed: the caller brings their
/// classes, tags and duplicate contacts up to date ([`after_import`]).
pub async fn apply(
    state: &AppState,
    table: Table,
    options: &ImportOptions,
    importer: &Importer,
    existing: Option<i64>,
    file_sha256: &str,
    sink: &mut dyn ProblemSink,
) -> Result<(ImportReport, Touched), ApiError> {
    importer.check(options.kind)?;
    let new = NewImport {
        kind: options.kind.name(),
        file_name: &options.file_name,
        file_sha256,
        user_id: importer.user_id,
    };
    let mut writer = state.store.begin_import(&new, existing).await?;
    let mut report = run_rows(state, table, options, importer, Some(&mut writer), sink).await?;
    let outcome = report.outcome(Some(options.on_invalid), options.skip_suspects);
    if report.status == "refused" {
        drop(writer);
        report.id = Some(match existing {
            Some(id) => {
                state.store.record_outcome(id, &outcome).await?;
                id
            }
            None => state.store.record_unapplied(&new, &outcome, None).await?,
        });
        return Ok((report, Touched::default()));
    }
    let (id, touched) = writer.finish(&outcome).await?;
    report.id = Some(id);
    Ok((report, touched))
}

/// Brings what follows from the customers an import (or its undo, or a
/// merge) changed up to date: their classes and tag rules — one by one
/// for a few, everyone at once for many — and the likely duplicates among
/// the contacts of those whose contacts changed. Failures are logged: the
/// import itself has been stored.
pub async fn after_import(state: &AppState, touched: &Touched, by: Option<i64>) {
    let customers = &touched.customers[..];
    if customers.is_empty() {
        return;
    }
    let cause = kehu_store::classes::cause::DATA_CHANGE;
    let started = std::time::Instant::now();
    let only = if customers.len() <= RECLASSIFY_ONE_BY_ONE {
        for &id in customers {
            if let Err(e) = state.classifier.reclassify(id, cause, by).await {
                tracing::warn!(customer_id = id, error = %e, "re-classifying after an import failed");
            }
        }
        Some(customers)
    } else {
        // Many rows written: the planner's statistics first (PostgreSQL),
        // then everyone re-read.
        let tables = ["customers", "contacts", "orders", "interactions"];
        if let Err(e) = state.store.refresh_statistics(&tables).await {
            tracing::warn!(error = %e, "refreshing statistics after an import failed");
        }
        let today = state.store.today();
        if let Err(e) = state.classifier.run_all(today, cause, by, None).await {
            tracing::warn!(error = %e, "re-classifying everyone after an import failed");
        }
        if !state.settings.run_jobs {
            // A process without the scheduler (the CLI) runs over everyone
            // no more: the resident's memory goes back before the tag rules
            // take theirs (the import's command stays under 1 GiB).
            state.classifier.release_resident().await;
        }
        None
    };
    let classified = started.elapsed();
    if let Err(e) = crate::api::tags::apply_rules(state, only).await {
        tracing::warn!(error = ?e, "re-applying tag rules after an import failed");
    }
    let tagged = started.elapsed();
    crate::contact_duplicates::refresh(state, &touched.contacts_of).await;
    tracing::info!(
        customers = customers.len(),
        contacts_of = touched.contacts_of.len(),
        classes_s = classified.as_secs_f64(),
        tag_rules_s = (tagged - classified).as_secs_f64(),
        contact_pairs_s = (started.elapsed() - tagged).as_secs_f64(),
        "brought up to date after an import"
    );
}

/// The hex SHA-256 of a file's bytes (an import's record says which file it was).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// The hex SHA-256 of a file, read in pieces (files of any size).
pub fn sha256_of_file(path: &std::path::Path) -> std::io::Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// The error report as CSV (UTF-8 with a BOM, for Excel): row, column,
/// field, value, reason — every cell defused against formulas.
pub fn problems_csv(problems: &[RowProblem], lang: kehu_core::Lang) -> String {
    use kehu_core::export::csv_field;
    let mut out = String::from("\u{feff}");
    let header = match lang {
        kehu_core::Lang::Zh => ["行号", "列", "字段", "值", "类型", "原因"],
        kehu_core::Lang::En => ["row", "column", "field", "value", "kind", "reason"],
    };
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    for p in problems {
        let kind = match (p.warning, lang) {
            (true, kehu_core::Lang::Zh) => "警告",
            (false, kehu_core::Lang::Zh) => "错误",
            (true, kehu_core::Lang::En) => "warning",
            (false, kehu_core::Lang::En) => "error",
        };
        let reason = match lang {
            kehu_core::Lang::Zh => &p.reason_zh,
            kehu_core::Lang::En => &p.reason_en,
        };
        let cells = [
            p.row.to_string(),
            csv_field(&p.column),
            csv_field(&p.field),
            csv_field(&p.value),
            kind.to_string(),
            csv_field(reason),
        ];
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

/// The import kinds' names, for messages.
pub fn kind_names() -> String {
    ImportKind::ALL.map(ImportKind::name).join(", ")
}

/// The imports `importer` may see: their own, or everyone's for those
/// whose rights reach every customer (newest first, at most `limit`).
pub async fn visible_records(
    state: &AppState,
    importer: &Importer,
    limit: i64,
) -> Result<Vec<kehu_store::imports::ImportRecord>, ApiError> {
    let whose = (!importer.sees_every_import()).then_some(importer.user_id.unwrap_or(0));
    Ok(state.store.list_imports(whose, limit).await?)
}

/// The importer a signed-in user is.
pub fn importer_of(user: &crate::auth::CurrentUser) -> Importer {
    Importer {
        user_id: Some(user.user.id),
        team: user.user.team.clone(),
        actor: Some(user.actor.clone()),
    }
}

/// The mapping an import used, as a mapping file (to apply it as checked).
pub fn mapping_of(kind: ImportKind, mapping: &[MappedColumn]) -> MappingFile {
    MappingFile {
        kind: Some(kind),
        columns: mapping
            .iter()
            .map(|m| (m.header.clone(), Some(m.field.clone())))
            .collect(),
    }
}

/// An uploaded file: checked (a dry run) and kept for applying it. With
/// `keep_unmapped`, a file whose columns cannot be mapped by their headers
/// is kept too (the report says why), for a person to map its columns.
pub async fn upload(
    state: &AppState,
    importer: &Importer,
    kind: ImportKind,
    file_name: &str,
    bytes: Vec<u8>,
    mapping: Option<MappingFile>,
    keep_unmapped: bool,
) -> Result<ImportReport, ApiError> {
    importer.check(kind)?;
    let sha = sha256_hex(&bytes);
    // Shared, not copied: the check reads it, the record keeps it.
    let bytes: std::sync::Arc<[u8]> = bytes.into();
    let table = Table::from_bytes(file_name, bytes.clone()).map_err(table_error)?;
    let headers = table.headers.clone();
    let options = ImportOptions {
        kind,
        file_name: file_name.to_string(),
        mapping,
        on_invalid: OnInvalid::Skip,
        skip_suspects: false,
    };
    let mut report = match dry_run(state, table, &options, importer, &mut ()).await {
        Ok(report) => report,
        // The columns need a person to map them: keep the file for that.
        Err(ApiError::Validation(e)) if keep_unmapped && e.for_field("mapping").is_some() => {
            let reason = &e.0[0].reason;
            ImportReport {
                id: None,
                kind: kind.name().to_string(),
                file_name: file_name.to_string(),
                status: "dry_run".into(),
                counts: ImportCounts {
                    problems: 1,
                    ..ImportCounts::default()
                },
                mapping: Vec::new(),
                headers,
                problems: vec![RowProblem {
                    row: 1,
                    column: String::new(),
                    field: "mapping".into(),
                    value: String::new(),
                    code: reason.code().to_string(),
                    reason_zh: reason.message(kehu_core::Lang::Zh),
                    reason_en: reason.message(kehu_core::Lang::En),
                    warning: false,
                }],
            }
        }
        Err(e) => return Err(e),
    };
    let new = NewImport {
        kind: kind.name(),
        file_name,
        file_sha256: &sha,
        user_id: importer.user_id,
    };
    report.id = Some(
        state
            .store
            .record_unapplied(&new, &report.outcome(None, false), Some(&bytes))
            .await?,
    );
    Ok(report)
}

/// An import record the importer may see: their own, or anyone's for
/// those whose rights reach every customer. 404 otherwise.
pub async fn visible_record(
    state: &AppState,
    importer: &Importer,
    id: i64,
) -> Result<kehu_store::imports::ImportRecord, ApiError> {
    let record = state.store.import_record(id).await?;
    if importer.sees_every_import() || record.user_id == importer.user_id {
        Ok(record)
    } else {
        Err(ApiError::NotFound)
    }
}

/// The report of a recorded import.
pub fn report_of(record: &kehu_store::imports::ImportRecord) -> ImportReport {
    let mapping: Vec<MappedColumn> =
        serde_json::from_value(record.mapping.clone()).unwrap_or_default();
    let problems: Vec<RowProblem> =
        serde_json::from_value(record.problems.clone()).unwrap_or_default();
    let counts: ImportCounts = serde_json::from_value(record.counts.clone()).unwrap_or_default();
    ImportReport {
        id: Some(record.id),
        kind: record.kind.clone(),
        file_name: record.file_name.clone(),
        status: record.status.clone(),
        problems,
        headers: serde_json::from_value(record.headers.clone()).unwrap_or_default(),
        mapping,
        counts,
    }
}

fn stored_file_gone() -> ApiError {
    ApiError::Conflict {
        zh: "只有尚未应用的试运行可以再次检查或应用".into(),
        en: "only a dry run not yet applied can be checked again or applied".into(),
    }
}

async fn stored_table(
    state: &AppState,
    record: &kehu_store::imports::ImportRecord,
) -> Result<(ImportKind, Table), ApiError> {
    if record.status != "dry_run" && record.status != "refused" {
        return Err(stored_file_gone());
    }
    let bytes = state
        .store
        .import_file(record.id)
        .await?
        .ok_or_else(stored_file_gone)?;
    let kind = ImportKind::parse(&record.kind).ok_or_else(|| {
        ApiError::Internal(format!("import {} has kind {}", record.id, record.kind))
    })?;
    let table = Table::from_bytes(&record.file_name, bytes).map_err(table_error)?;
    Ok((kind, table))
}

/// Checks a kept upload again, with another mapping.
pub async fn check_again(
    state: &AppState,
    importer: &Importer,
    id: i64,
    mapping: Option<MappingFile>,
) -> Result<ImportReport, ApiError> {
    let record = visible_record(state, importer, id).await?;
    let (kind, table) = stored_table(state, &record).await?;
    let options = ImportOptions {
        kind,
        file_name: record.file_name.clone(),
        mapping,
        on_invalid: OnInvalid::Skip,
        skip_suspects: false,
    };
    let mut report = dry_run(state, table, &options, importer, &mut ()).await?;
    state
        .store
        .record_outcome(id, &report.outcome(None, false))
        .await?;
    report.id = Some(id);
    Ok(report)
}

/// Applies a kept upload with the mapping of its last check.
pub async fn apply_stored(
    state: &AppState,
    importer: &Importer,
    id: i64,
    on_invalid: OnInvalid,
    skip_suspects: bool,
) -> Result<ImportReport, ApiError> {
    let record = visible_record(state, importer, id).await?;
    let (kind, table) = stored_table(state, &record).await?;
    let mapping: Vec<MappedColumn> =
        serde_json::from_value(record.mapping.clone()).unwrap_or_default();
    let options = ImportOptions {
        kind,
        file_name: record.file_name.clone(),
        mapping: Some(mapping_of(kind, &mapping)),
        on_invalid,
        skip_suspects,
    };
    let (report, touched) = apply(
        state,
        table,
        &options,
        importer,
        Some(id),
        &record.file_sha256,
        &mut (),
    )
    .await?;
    state.auditor.record(crate::audit::by(
        importer.user_id,
        "import.apply",
        format!("import:{id}"),
        serde_json::json!({"kind": record.kind, "file": record.file_name, "counts": report.counts}),
    ));
    after_import(state, &touched, importer.user_id).await;
    Ok(report)
}

/// Undoes an applied import (the importer's own, or any for those who reach everyone).
pub async fn undo(
    state: &AppState,
    importer: &Importer,
    id: i64,
) -> Result<kehu_store::imports::UndoSummary, ApiError> {
    visible_record(state, importer, id).await?;
    let summary = state.store.undo_import(id, importer.user_id).await?;
    state.auditor.record(crate::audit::by(
        importer.user_id,
        "import.undo",
        format!("import:{id}"),
        serde_json::json!({"deleted": summary.deleted, "restored": summary.restored}),
    ));
    after_import(state, &summary.touched, importer.user_id).await;
    Ok(summary)
}

/// The headers and first `rows` rows of a kept upload (empty once applied).
pub async fn preview(
    state: &AppState,
    record: &kehu_store::imports::ImportRecord,
    rows: usize,
) -> Result<(Vec<String>, Vec<Vec<String>>), ApiError> {
    let Some(bytes) = state.store.import_file(record.id).await? else {
        return Ok((Vec::new(), Vec::new()));
    };
    let table = Table::from_bytes(&record.file_name, bytes).map_err(table_error)?;
    let headers = table.headers.clone();
    let first = table
        .filter_map(Result::ok)
        .take(rows)
        .map(|r| r.cells)
        .collect();
    Ok((headers, first))
}

/// A saved template as the mapping it stands for.
pub fn template_mapping(saved: &kehu_store::imports::SavedMapping) -> MappingFile {
    MappingFile {
        kind: ImportKind::parse(&saved.kind),
        columns: saved.columns.clone(),
    }
}

/// Saves a mapping template (for a kind the user may import): a name, and
/// each column mapped to one of the kind's fields, a custom field
/// (`cf.KEY`) or nothing. Saving under an existing name replaces it.
pub async fn save_template(
    state: &AppState,
    importer: &Importer,
    kind: &str,
    name: &str,
    columns: &std::collections::BTreeMap<String, Option<String>>,
) -> Result<kehu_store::imports::SavedMapping, ApiError> {
    let Some(parsed) = ImportKind::parse(kind) else {
        return Err(ApiError::field(
            "kind",
            Reason::UnknownOption {
                allowed: ImportKind::ALL
                    .iter()
                    .map(|k| k.name().to_string())
                    .collect(),
            },
        ));
    };
    importer.check(parsed)?;
    let mut e = kehu_core::ValidationErrors::default();
    let name = kehu_core::text::clean(name);
    if name.is_empty() {
        e.push("name", Reason::Required);
    } else if name.chars().count() > 60 {
        e.push("name", Reason::TooLong { max: 60 });
    }
    if columns.is_empty() {
        e.push("columns", Reason::Required);
    }
    let defs = state.store.custom_field_defs().await?;
    for (header, field) in columns {
        let Some(field) = field else { continue };
        let known = parsed.target(field).is_some()
            || field
                .strip_prefix(kehu_core::import_mapping::CUSTOM_PREFIX)
                .is_some_and(|k| {
                    parsed == ImportKind::Customers && defs.iter().any(|d| d.key == k)
                });
        if !known {
            e.push(
                format!("columns.{header}"),
                Reason::UnknownOption {
                    allowed: parsed.targets().iter().map(|t| t.key.to_string()).collect(),
                },
            );
        }
    }
    e.into_result()?;
    Ok(state
        .store
        .save_mapping(parsed.name(), &name, columns, importer.user_id)
        .await?)
}

/// A template for an import of `kind`, by id; refused when it is another kind's.
pub async fn template_for(
    state: &AppState,
    kind: ImportKind,
    id: i64,
) -> Result<MappingFile, ApiError> {
    let saved = state.store.mapping(id).await.map_err(|_| {
        ApiError::field(
            "mapping_id",
            Reason::Other {
                zh: format!("没有编号为 {id} 的映射模板"),
                en: format!("no mapping template {id}"),
            },
        )
    })?;
    if saved.kind != kind.name() {
        return Err(ApiError::field(
            "mapping_id",
            Reason::Other {
                zh: format!(
                    "模板“{}”用于 {}，不是 {}",
                    saved.name,
                    saved.kind,
                    kind.name()
                ),
                en: format!(
                    "template {:?} is for {}, not {}",
                    saved.name,
                    saved.kind,
                    kind.name()
                ),
            },
        ));
    }
    Ok(template_mapping(&saved))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_are_read_for_a_big_chunk_or_after_many_lookups() {
        let cases = [
            // (new names in the chunk, looked up before, read all?)
            (0, 0, false),
            (1, 0, false),
            (199, 0, false),
            (200, 0, true),
            (100, 1_900, false),
            (101, 1_900, true),
            (1, 2_000, true),
            (199, 1_801, false),
        ];
        for (new_names, looked_up, expected) in cases {
            assert_eq!(
                reads_all_stored_names(new_names, looked_up),
                expected,
                "{new_names} new names after {looked_up} looked up"
            );
        }
    }
}
