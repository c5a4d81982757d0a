//! Customers as CSV (UTF-8 with a byte-order mark, for Excel) or XLSX: a
//! segment's customers, or everyone, within the reader's scope, with their
//! class in each scheme and their tags. Cells that a spreadsheet would run
//! as formulas are defused (`kehu_core::export`); money is exact text in 元.

use crate::api::segments::compile_for_reader;
use crate::error::ApiError;
use crate::pdf::PdfTable;
use crate::AppState;
use kehu_core::customer::CustomerStatus;
use kehu_core::export::{csv_field, safe_cell};
use kehu_core::privacy::FieldRights;
use kehu_core::segment::Plan;
use kehu_core::{Fen, Reason};
use kehu_store::ScopeFilter;
use std::collections::HashMap;

/// Customers read per round trip while exporting.
const CHUNK: usize = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
    /// Reports only (every table laid out on pages, `crate::pdf`); a
    /// customer export is data for another program, not a document.
    Pdf,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format, Reason> {
        match s {
            "csv" => Ok(Format::Csv),
            "xlsx" => Ok(Format::Xlsx),
            "pdf" => Ok(Format::Pdf),
            _ => Err(Reason::UnknownOption {
                allowed: vec!["csv".into(), "xlsx".into(), "pdf".into()],
            }),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Pdf => "application/pdf",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
            Format::Pdf => "pdf",
        }
    }
}

/// The fixed columns, as our users' templates name them, with the JSON
/// name of the business field each shows (a column of a field the reader
/// may not see is left out) and whether it holds whole numbers (written as
/// numbers in XLSX).
const COLUMNS: &[(&str, Option<&str>, bool)] = &[
    ("客户编号", None, false),
    ("客户名称", None, false),
    ("统一社会信用代码", Some("uscc"), false),
    ("所属行业", Some("industry"), false),
    ("企业规模(员工数)", Some("employees"), true),
    ("省份", Some("province"), false),
    ("城市", Some("city"), false),
    ("区域", Some("sales_region"), false),
    ("合作起始时间", Some("cooperation_start_on"), false),
    ("近12个月采购额(元)", Some("purchase_12m_fen"), false),
    ("订单数", None, true),
    ("最近下单日期", None, false),
    ("状态", None, false),
    ("团队", None, false),
    ("标签", None, false),
];

/// Customers an export over HTTP may hold (the file is built in memory);
/// `kehu export` has no limit.
pub const HTTP_MAX_CUSTOMERS: usize = 200_000;

/// The customers `segment` holds for (everyone when None) in `scope`, as
/// `format`, as `rights` let the reader see them (business fields masked,
/// or their columns left out); returns the file and how many customers it
/// holds. More than `max` customers are refused.
pub async fn customers(
    state: &AppState,
    scope: &ScopeFilter,
    rights: &FieldRights,
    segment: Option<&str>,
    format: Format,
    max: Option<usize>,
) -> Result<(Vec<u8>, usize), ApiError> {
    if format == Format::Pdf {
        return Err(ApiError::field(
            "format",
            Reason::UnknownOption {
                allowed: vec!["csv".into(), "xlsx".into()],
            },
        ));
    }
    let (plan, tags) = match segment.filter(|s| !s.trim().is_empty()) {
        Some(e) => {
            let (c, tags) = compile_for_reader(state, rights, e, "segment").await?;
            (c.plan, tags)
        }
        // An empty AND holds for everyone in the scope.
        None => (Plan::And(Vec::new()), state.store.tag_catalogue().await?),
    };
    let ids = state.segments.ids(&plan, scope).await?;
    if let Some(max) = max.filter(|&m| ids.len() > m) {
        return Err(ApiError::field(
            "segment",
            Reason::Rule {
                code: "export_too_large",
                zh: format!("要导出的客户有 {} 个，超过 {max} 个的上限：请缩小客户分群，或用 kehu export 导出", ids.len()),
                en: format!("{} customers to export, over the limit of {max}: narrow the segment or use kehu export", ids.len()),
            },
        ));
    }
    let set = state.classifier.published().await?;
    let schemes = set.vocabulary();
    // One answer to what the reader may see: the rows' masking and the
    // columns left out both come from the shield.
    let shield = crate::privacy::CustomerShield::new(rights, &[]);
    let shown: Vec<bool> = COLUMNS
        .iter()
        .map(|(_, json, _)| json.is_none_or(|j| !shield.withheld().iter().any(|w| w == j)))
        .collect();
    let kept = |cells: Vec<String>| -> Vec<String> {
        cells
            .into_iter()
            .zip(&shown)
            .filter_map(|(cell, shown)| shown.then_some(cell))
            .collect()
    };
    let mut header = kept(COLUMNS.iter().map(|c| c.0.to_string()).collect());
    let number_columns: Vec<usize> = COLUMNS
        .iter()
        .zip(&shown)
        .filter(|(_, shown)| **shown)
        .enumerate()
        .filter_map(|(i, (column, _))| column.2.then_some(i))
        .collect();
    header.extend(schemes.iter().map(|s| s.name.clone()));
    let mut rows: Vec<Vec<String>> = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let customers = state.store.customers_in(chunk).await?;
        let mut classes: HashMap<(i64, String), String> = HashMap::new();
        for (c, s, k) in state
            .store
            .classes_in(chunk, |c, s, k| (c, s.to_string(), k.to_string()))
            .await?
        {
            classes.insert((c, s), k);
        }
        let mut tag_paths: HashMap<i64, Vec<String>> = HashMap::new();
        for (c, t) in state.store.tag_pairs_in(chunk).await? {
            tag_paths.entry(c).or_default().push(tags.path_text(t));
        }
        for mut c in customers {
            shield.apply(&mut c);
            let text = |v: &Option<String>| v.clone().unwrap_or_default();
            let mut row = kept(vec![
                c.code.clone(),
                c.name.clone(),
                text(&c.uscc),
                text(&c.industry),
                c.employees.map(|e| e.to_string()).unwrap_or_default(),
                text(&c.province),
                text(&c.city),
                text(&c.sales_region),
                c.cooperation_start_on
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                Fen::new(c.purchase_12m_fen)
                    .map(|f| f.yuan_string())
                    .unwrap_or_default(),
                c.order_count.to_string(),
                c.last_order_on.map(|d| d.to_string()).unwrap_or_default(),
                CustomerStatus::parse(&c.status)
                    .map_or(c.status.clone(), |s| s.label_zh().to_string()),
                text(&c.team),
                tag_paths
                    .get(&c.id)
                    .map(|p| p.join("；"))
                    .unwrap_or_default(),
            ]);
            for s in &schemes {
                row.push(
                    classes
                        .get(&(c.id, s.key.clone()))
                        .cloned()
                        .unwrap_or_default(),
                );
            }
            rows.push(row);
        }
    }
    let n = rows.len();
    Ok((
        table_file(format, "客户", "客户", &header, &rows, &number_columns)?,
        n,
    ))
}

/// A table as a CSV, XLSX or PDF file (one sheet named `sheet`; the PDF
/// under `title`); cells that a
/// spreadsheet would run as formulas are defused; `number_columns` hold
/// whole numbers and are written as numbers in XLSX.
pub fn table_file(
    format: Format,
    title: &str,
    sheet: &str,
    header: &[String],
    rows: &[Vec<String>],
    number_columns: &[usize],
) -> Result<Vec<u8>, ApiError> {
    match format {
        Format::Csv => Ok(csv(header, rows)),
        Format::Xlsx => xlsx(sheet, header, rows, number_columns),
        Format::Pdf => pdf(
            title,
            &[PdfTable {
                name: sheet,
                header,
                rows,
            }],
        ),
    }
}

/// A PDF of tables (name, header, rows) under `title`, stamped with when it was made.
fn pdf(title: &str, tables: &[PdfTable<'_>]) -> Result<Vec<u8>, ApiError> {
    let made = crate::tasks::to_local(chrono::Utc::now()).format("%Y-%m-%d %H:%M");
    let footer = format!("kehu · {made} (UTC+8)");
    crate::pdf::tables_pdf(title, &footer, tables)
}

/// One table of a report: its key (for `table=`), sheet name, header and
/// rows, and the columns of whole numbers.
pub type Table<'a> = (
    &'a str,
    &'a str,
    (Vec<String>, Vec<Vec<String>>),
    &'a [usize],
);

/// A report of several tables: CSV of the one `table` names (default the
/// first), or XLSX or PDF (under `title`) of them all.
pub fn tables_file(
    format: Format,
    table: Option<&str>,
    title: &str,
    tables: &[Table<'_>],
) -> Result<Vec<u8>, ApiError> {
    match format {
        Format::Csv => {
            let key = table.filter(|t| !t.is_empty()).unwrap_or(tables[0].0);
            let Some((_, sheet, (header, rows), numbers)) = tables.iter().find(|t| t.0 == key)
            else {
                return Err(ApiError::field(
                    "table",
                    kehu_core::Reason::UnknownOption {
                        allowed: tables.iter().map(|t| t.0.to_string()).collect(),
                    },
                ));
            };
            table_file(format, title, sheet, header, rows, numbers)
        }
        Format::Pdf => {
            let tables: Vec<PdfTable<'_>> = tables
                .iter()
                .map(|(_, name, (header, rows), _)| PdfTable { name, header, rows })
                .collect();
            pdf(title, &tables)
        }
        Format::Xlsx => {
            let sheets: Vec<Sheet<'_>> = tables
                .iter()
                .map(|(_, name, (header, rows), numbers)| Sheet {
                    name,
                    header,
                    rows,
                    number_columns: numbers,
                })
                .collect();
            workbook(&sheets)
        }
    }
}

fn csv(header: &[String], rows: &[Vec<String>]) -> Vec<u8> {
    let mut out = String::from("\u{feff}");
    for line in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        let fields: Vec<String> = line.iter().map(|f| csv_field(f)).collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out.into_bytes()
}

fn xlsx(
    name: &str,
    header: &[String],
    rows: &[Vec<String>],
    number_columns: &[usize],
) -> Result<Vec<u8>, ApiError> {
    workbook(&[Sheet {
        name,
        header,
        rows,
        number_columns,
    }])
}

/// One sheet of a workbook: a header row and rows of text.
pub struct Sheet<'a> {
    pub name: &'a str,
    pub header: &'a [String],
    pub rows: &'a [Vec<String>],
    /// Columns of whole numbers, written as numbers.
    pub number_columns: &'a [usize],
}

/// An XLSX workbook of several tables; cells that would run as formulas are defused.
pub fn workbook(sheets: &[Sheet<'_>]) -> Result<Vec<u8>, ApiError> {
    let fail = |e: rust_xlsxwriter::XlsxError| ApiError::Internal(format!("writing XLSX: {e}"));
    let mut book = rust_xlsxwriter::Workbook::new();
    for s in sheets {
        let sheet = book.add_worksheet();
        sheet.set_name(s.name).map_err(fail)?;
        for (c, h) in s.header.iter().enumerate() {
            sheet.write_string(0, c as u16, h.as_str()).map_err(fail)?;
        }
        for (r, row) in s.rows.iter().enumerate() {
            let r = u32::try_from(r + 1)
                .map_err(|_| ApiError::Internal("too many rows for XLSX".into()))?;
            for (c, v) in row.iter().enumerate() {
                let number = s
                    .number_columns
                    .contains(&c)
                    .then(|| v.parse::<i64>().ok())
                    .flatten();
                match number {
                    // Whole numbers well below 2^53: exact as spreadsheet numbers.
                    Some(n) => sheet.write_number(r, c as u16, n as f64).map_err(fail)?,
                    None => sheet
                        .write_string(r, c as u16, safe_cell(v).as_ref())
                        .map_err(fail)?,
                };
            }
        }
    }
    book.save_to_buffer().map_err(fail)
}

/// A file download: its type and `attachment; filename="NAME.EXT"`.
pub fn download(format: Format, name: &str, file: Vec<u8>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let disposition = format!("attachment; filename=\"{name}.{}\"", format.extension());
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                format.content_type().to_string(),
            ),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        file,
    )
        .into_response()
}
