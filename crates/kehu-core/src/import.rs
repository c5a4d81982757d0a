//! Rows of an imported file → inputs the ordinary validation takes: each
//! mapped cell read for its field (units, lists, whole numbers), cells that
//! would smuggle a spreadsheet formula or HTML refused, and every problem
//! named by row, column, field and value. What a row *does* (insert,
//! update, nothing) is decided by the server against the database; this
//! module only reads and checks.

use crate::contact::ContactInput;
use crate::customer::{CustomerInput, CustomerRules};
use crate::error::{Reason, ValidationErrors};
use crate::import_mapping::{ImportKind, Target, Unit};
use crate::interaction::InteractionInput;
use crate::money::Fen;
use crate::order::OrderInput;
use crate::text::{clean, to_half_width};
use serde::Serialize;

/// One problem of one row, as the error report lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RowProblem {
    /// The row as a spreadsheet numbers it (the header is row 1).
    pub row: u64,
    /// The column's header ("" when the problem is the row itself).
    pub column: String,
    /// The field it feeds (`name`, `contact.mobile`, …).
    pub field: String,
    /// The cell as it was in the file.
    pub value: String,
    /// Stable code of the reason (`amount_negative`, `duplicate_suspect`, …).
    pub code: String,
    pub reason_zh: String,
    pub reason_en: String,
    /// A warning (kept, imported) rather than an error (row refused).
    pub warning: bool,
}

/// How the cells of a file's personal columns are masked in its problems:
/// field key (as problems name it) → mask. An error report is kept and
/// read by others than the importer, so it never holds personal data in
/// clear — the row and column locate the cell in the importer's own file.
#[derive(Debug, Clone, Default)]
pub struct ProblemMasks(std::collections::BTreeMap<String, crate::privacy::MaskKind>);

impl ProblemMasks {
    /// The personal fields of `kind`: a contact's (as the customer's
    /// `contact.*` columns or a contacts file's own) and, for customers,
    /// the custom fields that are personal.
    pub fn of(kind: ImportKind, defs: &[crate::custom_field::CustomFieldDef]) -> ProblemMasks {
        let mut masks = std::collections::BTreeMap::new();
        for f in crate::privacy::CONTACT_FIELDS {
            let key = match kind {
                ImportKind::Customers => f.key,
                ImportKind::Contacts => f.key.trim_start_matches("contact."),
                ImportKind::Orders | ImportKind::Interactions => continue,
            };
            masks.insert(key.to_string(), f.mask);
        }
        if kind == ImportKind::Customers {
            for d in defs {
                if let Some(mask) = d.personal() {
                    masks.insert(format!("custom_fields.{}", d.key), mask);
                }
            }
        }
        ProblemMasks(masks)
    }

    /// `p` with its cell masked when the cell is personal.
    pub fn apply(&self, mut p: RowProblem) -> RowProblem {
        if let Some(mask) = self.0.get(&p.field) {
            p.value = crate::privacy::mask(*mask, &p.value);
        }
        p
    }
}

/// The chosen columns of a file (from [`crate::import_mapping::resolve`]) with its headers.
pub struct Columns<'a> {
    pub kind: ImportKind,
    pub headers: &'a [String],
    pub chosen: &'a [(usize, &'static Target)],
    /// Columns feeding custom fields of customers.
    pub custom: &'a [CustomColumn],
}

/// A column feeding a customer's custom field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomColumn {
    pub column: usize,
    pub key: String,
    /// The field takes several values (a cell lists them: 甲、乙).
    pub list: bool,
}

/// A row read into the input of its kind (one per row, short-lived: the
/// customer variant's size is no concern). `customer_code` is the customer
/// a contact, order or interaction belongs to (upper-cased).
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum RowInput {
    Customer {
        input: CustomerInput,
        /// The primary contact's cells, when any was given.
        contact: Option<ContactInput>,
    },
    Contact {
        customer_code: String,
        input: ContactInput,
    },
    Order {
        customer_code: String,
        input: OrderInput,
    },
    Interaction {
        customer_code: String,
        input: InteractionInput,
    },
}

impl<'a> Columns<'a> {
    /// The problem `reason` of `field` in row `row` with `cells`, placed in
    /// the column that feeds the field (`prefix` + field: `contact.` for the
    /// contact of a customer row).
    pub fn problem(
        &self,
        row: u64,
        cells: &[String],
        field: &str,
        reason: &Reason,
        warning: bool,
    ) -> RowProblem {
        let column = self
            .chosen
            .iter()
            .find(|(_, t)| t.key == field)
            .map(|(c, _)| c)
            .or_else(|| {
                let key = field.strip_prefix("custom_fields.")?;
                self.custom.iter().find(|c| c.key == key).map(|c| &c.column)
            });
        let (column, value) = match column {
            Some(c) => (
                self.headers.get(*c).cloned().unwrap_or_default(),
                cells.get(*c).cloned().unwrap_or_default(),
            ),
            None => (String::new(), String::new()),
        };
        RowProblem {
            row,
            column,
            field: field.to_string(),
            value,
            code: reason.code().to_string(),
            reason_zh: reason.message(crate::Lang::Zh),
            reason_en: reason.message(crate::Lang::En),
            warning,
        }
    }

    /// Validation errors of a row's input as problems; `prefix` names the
    /// part of the row they are about (`contact.` for a customer's contact).
    pub fn problems(
        &self,
        row: u64,
        cells: &[String],
        prefix: &str,
        errors: &ValidationErrors,
    ) -> Vec<RowProblem> {
        errors
            .0
            .iter()
            .map(|e| {
                self.problem(
                    row,
                    cells,
                    &format!("{prefix}{}", e.field),
                    &e.reason,
                    false,
                )
            })
            .collect()
    }

    /// Reads one data row into its input and the problems of its cells
    /// (none: the row reads whole). Empty cells are absent values (`None`):
    /// on an update they leave the stored value alone; unreadable cells are
    /// left out.
    pub fn read(&self, row: u64, cells: &[String]) -> (RowInput, Vec<RowProblem>) {
        let mut problems = Vec::new();
        let extra = cells
            .iter()
            .enumerate()
            .skip(self.headers.len())
            .find(|(_, c)| !c.trim().is_empty());
        if let Some((i, cell)) = extra {
            problems.push(RowProblem {
                row,
                column: String::new(),
                field: String::new(),
                value: cell.clone(),
                code: "ragged_row".into(),
                reason_zh: format!(
                    "本行有 {} 个单元格，表头只有 {} 列（第 {} 列多余）",
                    cells.len(),
                    self.headers.len(),
                    i + 1
                ),
                reason_en: format!(
                    "the row has {} cells but the header only {} columns (column {} is extra)",
                    cells.len(),
                    self.headers.len(),
                    i + 1
                ),
                warning: false,
            });
        }
        let mut customer = CustomerInput::default();
        let mut contact = ContactInput::default();
        let mut contact_given = false;
        let mut customer_code = String::new();
        let mut order = OrderInput::default();
        let mut interaction = InteractionInput::default();
        let mut plain = ContactInput::default();
        for (column, target) in self.chosen {
            let raw = cells.get(*column).map(String::as_str).unwrap_or("");
            let text = raw.trim();
            if text.is_empty() {
                continue;
            }
            if let Err(reason) = safe_cell(text) {
                problems.push(self.problem(row, cells, target.key, &reason, false));
                continue;
            }
            let value = Some(text.to_string());
            let mut fail = |reason: Reason| {
                problems.push(self.problem(row, cells, target.key, &reason, false));
            };
            match (self.kind, target.key) {
                (_, "customer_code") => customer_code = clean(text).to_ascii_uppercase(),
                (ImportKind::Customers, key) => {
                    if let Some(field) = key.strip_prefix("contact.") {
                        contact_given = true;
                        set_contact(&mut contact, field, value);
                        continue;
                    }
                    match key {
                        "code" => customer.code = value,
                        "name" => customer.name = value,
                        "uscc" => customer.uscc = value,
                        "industry" => customer.industry = value,
                        "employees" => match whole_number(text, &["人", "名", "people"]) {
                            Ok(n) => customer.employees = Some(n),
                            Err(r) => fail(r),
                        },
                        "sales_region" => customer.sales_region = value,
                        "province" => customer.province = value,
                        "city" => customer.city = value,
                        "address" => customer.address = value,
                        "cooperation_start_on" => customer.cooperation_start_on = value,
                        "declared_annual_purchase_fen" => match amount(text, target.unit) {
                            Ok(f) => customer.declared_annual_purchase_fen = Some(f.get()),
                            Err(r) => fail(r),
                        },
                        "product_types" => customer.product_types = split_list(text),
                        "source_channel" => customer.source_channel = value,
                        "status" => customer.status = value,
                        "notes" => customer.notes = value,
                        _ => {}
                    }
                }
                (ImportKind::Contacts, field) => set_contact(&mut plain, field, value),
                (ImportKind::Orders, key) => match key {
                    "order_no" => order.order_no = value,
                    "ordered_on" => order.ordered_on = value,
                    "amount_fen" => match amount(text, target.unit) {
                        Ok(f) => order.amount_fen = Some(f.get()),
                        Err(r) => fail(r),
                    },
                    "product_line" => order.product_line = value,
                    "notes" => order.notes = value,
                    _ => {}
                },
                (ImportKind::Interactions, key) => match key {
                    "occurred_on" => interaction.occurred_on = value,
                    "kind" => interaction.kind = value,
                    "summary" => interaction.summary = value,
                    "severity" => interaction.severity = value,
                    "status" => interaction.status = value,
                    "satisfaction" => match whole_number(text, &["分"]) {
                        Ok(n) => interaction.satisfaction = Some(n),
                        Err(r) => fail(r),
                    },
                    _ => {}
                },
            }
        }
        for c in self.custom {
            let text = cells.get(c.column).map(String::as_str).unwrap_or("").trim();
            if text.is_empty() {
                continue;
            }
            let field = format!("custom_fields.{}", c.key);
            match safe_cell(text) {
                Err(reason) => problems.push(self.problem(row, cells, &field, &reason, false)),
                Ok(()) => {
                    // The field's own validation reads every kind from text;
                    // a multi-choice field takes the listed values.
                    let value = if c.list {
                        serde_json::Value::from(split_list(text))
                    } else {
                        serde_json::Value::from(text)
                    };
                    customer.custom_fields.insert(c.key.clone(), value);
                }
            }
        }
        if self.kind != ImportKind::Customers && customer_code.is_empty() {
            problems.push(self.problem(row, cells, "customer_code", &Reason::Required, false));
        }
        let input = match self.kind {
            ImportKind::Customers => RowInput::Customer {
                input: customer,
                contact: contact_given.then_some(ContactInput {
                    is_primary: Some(true),
                    ..contact
                }),
            },
            ImportKind::Contacts => RowInput::Contact {
                customer_code,
                input: plain,
            },
            ImportKind::Orders => RowInput::Order {
                customer_code,
                input: order,
            },
            ImportKind::Interactions => RowInput::Interaction {
                customer_code,
                input: interaction,
            },
        };
        (input, problems)
    }

    /// The validation problems of a row that could not be read whole, on
    /// fields not `reported` already: a row's problems are listed at once.
    pub fn validation_problems(
        &self,
        row: u64,
        cells: &[String],
        input: &RowInput,
        rules: &CustomerRules<'_>,
        reported: &[RowProblem],
    ) -> Vec<RowProblem> {
        let mut found = Vec::new();
        let mut check = |prefix: &str, result: Result<(), ValidationErrors>| {
            if let Err(e) = result {
                found.extend(self.problems(row, cells, prefix, &e));
            }
        };
        match input {
            RowInput::Customer { input, contact } => {
                check("", input.validate_keeping_missing(rules).map(drop));
                if let Some(c) = contact {
                    check("contact.", c.validate().map(drop));
                }
            }
            RowInput::Contact { input, .. } => check("", input.validate().map(drop)),
            RowInput::Order { input, .. } => check("", input.validate(rules.today).map(drop)),
            RowInput::Interaction { input, .. } => check("", input.validate(rules.today).map(drop)),
        }
        found.retain(|p| !reported.iter().any(|r| r.field == p.field));
        found
    }
}

fn set_contact(c: &mut ContactInput, field: &str, value: Option<String>) {
    match field {
        "name" => c.name = value,
        "title" => c.title = value,
        "decision_role" => c.decision_role = value,
        "landline" => c.landline = value,
        "mobile" => c.mobile = value,
        "email" => c.email = value,
        "notes" => c.notes = value,
        _ => {}
    }
}

/// `base.field = row.field` for each named field `row` gives (is `Some`).
macro_rules! take_given {
    ($base:ident, $row:ident: $($f:ident),* $(,)?) => {
        $( if $row.$f.is_some() { $base.$f = $row.$f.clone(); } )*
    };
}

/// The given values of `row` replace those of `base`; absent ones leave
/// `base` alone (an import never clears a stored value with an empty cell).
pub fn overlay_customer(base: &mut CustomerInput, row: &CustomerInput) {
    take_given!(
        base, row:
        code,
        name,
        uscc,
        industry,
        employees,
        annual_revenue_fen,
        province,
        city,
        sales_region,
        address,
        founded_on,
        cooperation_start_on,
        declared_annual_purchase_fen,
        status,
        source_channel,
        notes
    );
    // A province or address given without a region: the region follows them again.
    if (row.province.is_some() || row.address.is_some()) && row.sales_region.is_none() {
        base.sales_region = None;
    }
    if row.province.is_none() && row.address.is_some() {
        base.province = None;
    }
    if !row.product_types.is_empty() {
        base.product_types = row.product_types.clone();
    }
}

/// As [`overlay_customer`], for contacts.
pub fn overlay_contact(base: &mut ContactInput, row: &ContactInput) {
    take_given!(base, row: name, title, decision_role, landline, mobile, email, notes);
}

/// Cells that would act when the file is opened again or shown: a
/// spreadsheet formula (`=…`) or HTML markup. Refused rather than stored.
fn safe_cell(text: &str) -> Result<(), Reason> {
    let half = to_half_width(text);
    if half.starts_with('=') {
        return Err(Reason::Other {
            zh: "单元格是公式（以 = 开头），请导出为数值后再导入".into(),
            en: "the cell is a formula (starts with =); export values, not formulas".into(),
        });
    }
    let bytes = half.as_bytes();
    let markup = bytes
        .windows(2)
        .any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'/' || w[1] == b'!'));
    if markup {
        return Err(Reason::Other {
            zh: "单元格含有 HTML 标记".into(),
            en: "the cell contains HTML markup".into(),
        });
    }
    Ok(())
}

/// A whole number, with thousands separators and a trailing unit allowed ("1,200人").
fn whole_number(text: &str, units: &[&str]) -> Result<i64, Reason> {
    let mut s: String = to_half_width(text)
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ',')
        .collect();
    for u in units {
        if let Some(stripped) = s.strip_suffix(u) {
            s = stripped.to_string();
        }
    }
    // Spreadsheets write whole numbers as "120.0" at times.
    let s = s.strip_suffix(".0").unwrap_or(&s);
    s.parse::<i64>().map_err(|_| Reason::IntegerFormat)
}

fn amount(text: &str, unit: Unit) -> Result<Fen, Reason> {
    match unit {
        Unit::WanYuan => Fen::parse_wan(text),
        _ => Fen::parse_yuan(text),
    }
}

/// "轴承、传动部件; 密封件" → three items.
fn split_list(text: &str) -> Vec<String> {
    text.split(['、', ',', '，', ';', '；', '/', '|'])
        .map(clean)
        .filter(|s| !s.is_empty())
        .collect()
}

/// What identifies the record a row is about within one file (a second
/// row with the same key is the same record again), and the field it is
/// read from.
pub fn row_key(row: &RowInput) -> (&'static str, String) {
    let norm = |s: &Option<String>| s.as_deref().map(clean).unwrap_or_default();
    match row {
        RowInput::Customer { input, .. } => match (&input.code, &input.uscc) {
            (Some(code), _) => ("code", format!("code:{}", clean(code).to_ascii_uppercase())),
            (None, Some(uscc)) => ("uscc", format!("uscc:{}", clean(uscc).to_ascii_uppercase())),
            _ => ("name", format!("name:{}", norm(&input.name))),
        },
        RowInput::Contact {
            customer_code,
            input,
        } => ("name", format!("{customer_code}|{}", norm(&input.name))),
        RowInput::Order {
            customer_code,
            input,
        } => match &input.order_no {
            Some(no) => ("order_no", format!("{customer_code}|no:{}", clean(no))),
            None => (
                "ordered_on",
                format!(
                    "{customer_code}|{}|{}|{}",
                    norm(&input.ordered_on),
                    input.amount_fen.unwrap_or_default(),
                    norm(&input.product_line)
                ),
            ),
        },
        RowInput::Interaction {
            customer_code,
            input,
        } => (
            "summary",
            format!(
                "{customer_code}|{}|{}|{}",
                norm(&input.occurred_on),
                norm(&input.kind),
                norm(&input.summary)
            ),
        ),
    }
}

/// The problem of a row that repeats an earlier row of the same file.
pub fn repeated_row(first_row: u64) -> Reason {
    Reason::Other {
        zh: format!("与第 {first_row} 行是同一条记录（文件内重复）"),
        en: format!("the same record as row {first_row} (repeated in the file)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import_mapping::resolve;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn read(
        kind: ImportKind,
        headers: &[&str],
        cells: &[&str],
    ) -> Result<RowInput, Vec<RowProblem>> {
        let headers = strings(headers);
        let chosen = resolve(kind, &headers, None).expect("maps");
        let columns = Columns {
            kind,
            headers: &headers,
            chosen: &chosen,
            custom: &[],
        };
        let (input, problems) = columns.read(7, &strings(cells));
        if problems.is_empty() {
            Ok(input)
        } else {
            Err(problems)
        }
    }

    #[test]
    fn problems_hold_personal_cells_masked() {
        use crate::custom_field::{CustomFieldDef, FieldGroup, FieldKind, FieldRule};
        let card = CustomFieldDef {
            key: "bank_card".into(),
            label: "银行卡".into(),
            group: FieldGroup::Basic,
            kind: FieldKind::Text,
            required: false,
            options: Vec::new(),
            rule: FieldRule {
                mask: Some(crate::privacy::MaskPattern { first: 0, last: 4 }),
                ..FieldRule::default()
            },
            position: 0,
        };
        let plain = CustomFieldDef {
            key: "motto".into(),
            rule: FieldRule::default(),
            ..card.clone()
        };
        let defs = [card, plain];
        let problem = |field: &str, value: &str| RowProblem {
            row: 2,
            column: "列".into(),
            field: field.into(),
            value: value.into(),
            code: "x".into(),
            reason_zh: String::new(),
            reason_en: String::new(),
            warning: false,
        };
        let cases: &[(ImportKind, &str, &str, &str)] = &[
            (
                ImportKind::Customers,
                "contact.mobile",
                "1391234567",
                "139***4567",
            ),
            (ImportKind::Customers, "contact.name", "欧阳娜娜", "欧**娜"),
            (ImportKind::Customers, "contact.email", "li@x", "l***@x"),
            (
                ImportKind::Customers,
                "custom_fields.bank_card",
                "6222abc",
                "***2abc",
            ),
            (ImportKind::Customers, "custom_fields.motto", "诚信", "诚信"),
            (
                ImportKind::Customers,
                "name",
                "杭州某某有限公司",
                "杭州某某有限公司",
            ),
            (ImportKind::Contacts, "mobile", "13912", "1***2"),
            (
                ImportKind::Contacts,
                "landline",
                "0571-8888666",
                "0571-****8666",
            ),
            (ImportKind::Contacts, "name", "王五", "王*"),
            (ImportKind::Contacts, "customer_code", "C1", "C1"),
            (ImportKind::Orders, "amount_fen", "-1", "-1"),
            (ImportKind::Orders, "mobile", "13900139000", "13900139000"),
        ];
        for (kind, field, value, shown) in cases {
            let masks = ProblemMasks::of(*kind, &defs);
            let got = masks.apply(problem(field, value)).value;
            assert_eq!(&got, shown, "{kind:?} {field}");
        }
    }

    #[test]
    fn a_row_lists_its_reading_and_validation_problems_at_once() {
        let headers = strings(&["客户编号", "下单日期", "金额(元)"]);
        let chosen = resolve(ImportKind::Orders, &headers, None).expect("maps");
        let columns = Columns {
            kind: ImportKind::Orders,
            headers: &headers,
            chosen: &chosen,
            custom: &[],
        };
        let cells = strings(&["C1", "2024-13-45", "-1"]);
        let (input, read) = columns.read(3, &cells);
        let rules = CustomerRules {
            industries: &[],
            custom_fields: &[],
            today: chrono::NaiveDate::from_ymd_opt(2025, 1, 1).expect("date"),
        };
        let more = columns.validation_problems(3, &cells, &input, &rules, &read);
        let fields: Vec<&str> = read.iter().chain(&more).map(|p| p.field.as_str()).collect();
        // The amount once (not also "required"), the date too.
        assert_eq!(fields, ["amount_fen", "ordered_on"]);
    }

    const CUSTOMER_HEADERS: &[&str] = &[
        "客户编号",
        "客户名称",
        "所属行业",
        "企业规模(员工数)",
        "联系人",
        "职务",
        "座机",
        "合作起始时间",
        "年采购额(万元)",
        "核心产品类型",
    ];

    #[test]
    fn a_template_customer_row_reads_with_units_and_lists() {
        let got = read(
            ImportKind::Customers,
            CUSTOMER_HEADERS,
            &[
                "C2024001",
                "华东精密制造有限公司",
                "制造业",
                "680人",
                "王建国",
                "采购总监",
                "0512-6288 1234",
                "2021/3/15",
                "120",
                "精密轴承、传动部件",
            ],
        )
        .expect("reads");
        let RowInput::Customer { input, contact } = got else {
            panic!("a customer row")
        };
        assert_eq!(input.code.as_deref(), Some("C2024001"));
        assert_eq!(input.employees, Some(680));
        assert_eq!(input.declared_annual_purchase_fen, Some(120_000_000));
        assert_eq!(input.product_types, ["精密轴承", "传动部件"]);
        let contact = contact.expect("contact cells");
        assert_eq!(contact.name.as_deref(), Some("王建国"));
        assert_eq!(contact.is_primary, Some(true));
    }

    #[test]
    fn bad_cells_are_named_by_row_column_field_and_value() {
        let cases: &[(ImportKind, &[&str], &[&str], &str, &str)] = &[
            (
                ImportKind::Orders,
                &["客户编号", "下单日期", "金额(元)", "产品线"],
                &["C2024001", "2024-03-01", "-500", "轴承"],
                "金额(元)",
                "amount_negative",
            ),
            (
                ImportKind::Orders,
                &["客户编号", "下单日期", "金额(元)", "产品线"],
                &["C2024001", "2024-03-01", "一百元", "轴承"],
                "金额(元)",
                "amount_format",
            ),
            (
                ImportKind::Orders,
                &["客户编号", "下单日期", "金额(元)"],
                &["", "2024-03-01", "500"],
                "客户编号",
                "required",
            ),
            (
                ImportKind::Customers,
                CUSTOMER_HEADERS,
                &[
                    "C1",
                    "=HYPERLINK(\"http://x\")",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                ],
                "客户名称",
                "invalid",
            ),
            (
                ImportKind::Customers,
                CUSTOMER_HEADERS,
                &[
                    "",
                    "<script>alert(1)</script>",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                ],
                "客户名称",
                "invalid",
            ),
            (
                ImportKind::Customers,
                CUSTOMER_HEADERS,
                &["", "某公司", "", "五百", "", "", "", "", "", ""],
                "企业规模(员工数)",
                "integer_format",
            ),
            (
                ImportKind::Interactions,
                &["客户编号", "日期", "类型", "摘要", "满意度"],
                &["C2024001", "2024-03-01", "拜访", "x", "4.5"],
                "满意度",
                "integer_format",
            ),
        ];
        for (kind, headers, cells, column, code) in cases {
            let problems = read(*kind, headers, cells).expect_err("refused");
            assert_eq!(problems.len(), 1, "{problems:?}");
            let p = &problems[0];
            assert_eq!(
                (p.row, p.column.as_str(), p.code.as_str()),
                (7, *column, *code),
                "{p:?}"
            );
            let col = headers.iter().position(|h| h == column).expect("column");
            assert_eq!(p.value, cells[col]);
        }
    }

    #[test]
    fn extra_cells_beyond_the_header_are_a_row_problem() {
        let problems = read(
            ImportKind::Orders,
            &["客户编号", "下单日期", "金额(元)"],
            &["C2024001", "2024-03-01", "500", "多出来的"],
        )
        .expect_err("ragged");
        assert_eq!(problems[0].code, "ragged_row");
        // Trailing empty cells are not a problem; missing cells are empty.
        assert!(read(
            ImportKind::Orders,
            &["客户编号", "下单日期", "金额(元)"],
            &["C2024001", "2024-03-01", "500", ""],
        )
        .is_ok());
        assert!(read(
            ImportKind::Orders,
            &["客户编号", "下单日期", "金额(元)"],
            &["C2024001"]
        )
        .is_ok());
    }

    #[test]
    fn overlay_keeps_stored_values_for_empty_cells() {
        let mut base = CustomerInput {
            name: Some("旧名".into()),
            industry: Some("制造业".into()),
            province: Some("江苏".into()),
            sales_region: Some("华东".into()),
            product_types: vec!["轴承".into()],
            ..Default::default()
        };
        overlay_customer(
            &mut base,
            &CustomerInput {
                name: Some("新名".into()),
                province: Some("广东".into()),
                ..Default::default()
            },
        );
        assert_eq!(base.name.as_deref(), Some("新名"));
        assert_eq!(base.industry.as_deref(), Some("制造业"));
        assert_eq!(base.province.as_deref(), Some("广东"));
        // The region follows the new province.
        assert_eq!(base.sales_region, None);
        assert_eq!(base.product_types, ["轴承"]);
    }

    #[test]
    fn row_keys_identify_the_same_record() {
        let order = |no: Option<&str>, amount| RowInput::Order {
            customer_code: "C1".into(),
            input: OrderInput {
                order_no: no.map(str::to_string),
                ordered_on: Some("2024-03-01".into()),
                amount_fen: Some(amount),
                ..Default::default()
            },
        };
        assert_eq!(row_key(&order(None, 5)), row_key(&order(None, 5)));
        assert_ne!(row_key(&order(None, 5)), row_key(&order(None, 6)));
        assert_eq!(
            row_key(&order(Some("A1"), 5)),
            row_key(&order(Some("A1"), 6))
        );
        assert_eq!(row_key(&order(Some("A1"), 5)).0, "order_no");
        let customer = |code: Option<&str>| RowInput::Customer {
            input: CustomerInput {
                code: code.map(str::to_string),
                name: Some("某公司 ".into()),
                ..Default::default()
            },
            contact: None,
        };
        assert_eq!(row_key(&customer(Some("c1 "))), ("code", "code:C1".into()));
        assert_eq!(row_key(&customer(None)), ("name", "name:某公司".into()));
    }
}
