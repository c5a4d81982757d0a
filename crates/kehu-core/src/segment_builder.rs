//! The visual segment builder: rows of conditions, each in a numbered
//! group, written out as the same expression a person would type.
//!
//! Rows of one group are joined by their own AND/OR and put in
//! parentheses when there is more than one group; a group joins the ones
//! before it with the join of its first row. So the rows
//! `(1) A`, `(1) OR B`, `(2) AND NOT C` say `(A OR B) AND NOT C`.

use crate::expr::quote_text;

/// How a row joins what comes before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Join {
    #[default]
    And,
    Or,
}

impl Join {
    /// `OR` is OR; anything else (missing, unknown) is AND.
    pub fn parse(s: Option<&str>) -> Join {
        match s {
            Some(s) if s.eq_ignore_ascii_case("or") => Join::Or,
            _ => Join::And,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Join::And => "AND",
            Join::Or => "OR",
        }
    }
}

/// What one row tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// A term of the language as it stands: a tag path, a class, `sales_region = 华东`.
    Term(String),
    /// A field compared with a value typed by the user (quoted when needed).
    Compare {
        field: String,
        op: String,
        value: String,
    },
}

impl Condition {
    fn text(&self) -> String {
        match self {
            Condition::Term(t) => t.clone(),
            Condition::Compare { field, op, value } => {
                format!("{field} {op} {}", quote_text(value))
            }
        }
    }
}

/// One row of the builder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Rows with the same group number (next to each other) form one
    /// parenthesized group.
    pub group: u8,
    pub join: Join,
    pub not: bool,
    pub condition: Condition,
}

/// The expression the rows say (empty rows are left out by the caller);
/// empty when there are no rows.
pub fn expression(rows: &[Row]) -> String {
    // Consecutive rows of one group; a group number seen again later
    // starts a new group (what the rows show on the page, in order).
    let mut groups: Vec<&[Row]> = Vec::new();
    let mut start = 0;
    for i in 1..=rows.len() {
        if i == rows.len() || rows[i].group != rows[start].group {
            groups.push(&rows[start..i]);
            start = i;
        }
    }
    let several = groups.len() > 1;
    let mut out = String::new();
    for (g, group) in groups.iter().enumerate() {
        if g > 0 {
            out.push_str(&format!(" {} ", group[0].join.word()));
        }
        let wrap = several && group.len() > 1;
        if wrap {
            out.push('(');
        }
        for (i, row) in group.iter().enumerate() {
            if i > 0 {
                out.push_str(&format!(" {} ", row.join.word()));
            }
            if row.not {
                out.push_str("NOT ");
            }
            out.push_str(&row.condition.text());
        }
        if wrap {
            out.push(')');
        }
    }
    out
}

/// Why an expression cannot be shown as the builder's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotBuildable {
    Syntax(crate::expr::ParseError),
    /// Parentheses inside a group, or NOT before parentheses.
    TooDeep,
    /// More rows or groups than the builder has.
    TooMany,
}

impl NotBuildable {
    pub fn message(&self, lang: crate::Lang) -> String {
        let zh = lang == crate::Lang::Zh;
        match self {
            NotBuildable::Syntax(e) => e.message(lang),
            NotBuildable::TooDeep => if zh {
                "条件的括号嵌套超出了构建器能表示的范围，请直接编辑表达式"
            } else {
                "the expression nests deeper than the builder shows; edit it as text"
            }
            .to_string(),
            NotBuildable::TooMany => if zh {
                "条件的行数或分组数超出了构建器的容量，请直接编辑表达式"
            } else {
                "the expression has more rows or groups than the builder; edit it as text"
            }
            .to_string(),
        }
    }
}

/// The rows that say `src` — the reverse of [`expression`] — when it fits
/// in `max_rows` rows and `max_groups` groups: each group a run of terms
/// joined one way, the groups joined the other. A comparison on a field
/// for which `is_field` holds becomes field, operator and value; any
/// other term stays as written.
pub fn rows_of(
    src: &str,
    is_field: impl Fn(&str) -> bool,
    max_rows: usize,
    max_groups: u8,
) -> Result<Vec<Row>, NotBuildable> {
    use crate::expr::Expr;
    let e = crate::expr::parse(src).map_err(NotBuildable::Syntax)?;
    let (top, children): (Join, Vec<&Expr>) = match &e {
        Expr::And(xs) => (Join::And, xs.iter().collect()),
        Expr::Or(xs) => (Join::Or, xs.iter().collect()),
        other => (Join::And, vec![other]),
    };
    // (join inside the group, its terms, whether it is a run of bare terms)
    let mut groups: Vec<(Join, Vec<&Expr>, bool)> = Vec::new();
    for child in children {
        match child {
            Expr::And(xs) | Expr::Or(xs) => {
                let inside = if matches!(child, Expr::And(_)) {
                    Join::And
                } else {
                    Join::Or
                };
                groups.push((inside, xs.iter().collect(), false));
            }
            simple => match groups.last_mut() {
                Some((_, terms, true)) => terms.push(simple),
                _ => groups.push((top, vec![simple], true)),
            },
        }
    }
    if groups.len() > usize::from(max_groups) {
        return Err(NotBuildable::TooMany);
    }
    let mut rows = Vec::new();
    for (g, (inside, terms, _)) in groups.iter().enumerate() {
        for (i, term) in terms.iter().enumerate() {
            let (not, bare) = match term {
                Expr::Not(x) => (true, &**x),
                other => (false, *other),
            };
            let condition = match bare {
                Expr::And(_) | Expr::Or(_) | Expr::Not(_) => return Err(NotBuildable::TooDeep),
                Expr::Compare { name, op, value } if is_field(&name.text) => Condition::Compare {
                    field: name.text.clone(),
                    op: op.symbol().to_string(),
                    value: value.as_text(),
                },
                other => Condition::Term(other.to_string()),
            };
            rows.push(Row {
                group: u8::try_from(g + 1).unwrap_or(u8::MAX),
                join: if i == 0 { top } else { *inside },
                not,
                condition,
            });
        }
    }
    if rows.len() > max_rows {
        return Err(NotBuildable::TooMany);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(group: u8, join: Join, not: bool, term: &str) -> Row {
        Row {
            group,
            join,
            not,
            condition: Condition::Term(term.into()),
        }
    }

    #[test]
    fn rows_become_the_expression() {
        use Join::{And, Or};
        let cases: Vec<(Vec<Row>, &str)> = vec![
            (vec![], ""),
            (vec![row(1, And, false, "华东")], "华东"),
            (vec![row(1, Or, true, "华东")], "NOT 华东"),
            (
                vec![
                    row(1, And, false, "华东"),
                    row(1, And, false, "战略型"),
                    row(1, And, true, "投诉客户"),
                ],
                "华东 AND 战略型 AND NOT 投诉客户",
            ),
            // One group needs no parentheses, whatever its number.
            (
                vec![row(2, And, false, "A"), row(2, Or, false, "B")],
                "A OR B",
            ),
            (
                vec![
                    row(1, And, false, "A"),
                    row(1, Or, false, "B"),
                    row(2, And, true, "C"),
                ],
                "(A OR B) AND NOT C",
            ),
            (
                vec![
                    row(1, And, false, "A"),
                    row(2, Or, false, "B"),
                    row(2, And, false, "C"),
                ],
                "A OR (B AND C)",
            ),
            // A group number used again further down starts a new group.
            (
                vec![
                    row(1, And, false, "A"),
                    row(1, Or, false, "B"),
                    row(2, And, false, "C"),
                    row(1, And, false, "D"),
                    row(1, Or, false, "E"),
                ],
                "(A OR B) AND C AND (D OR E)",
            ),
        ];
        for (rows, want) in cases {
            assert_eq!(expression(&rows), want, "{rows:?}");
        }
    }

    #[test]
    fn typed_values_are_quoted_when_needed() {
        let rows = [
            Row {
                group: 1,
                join: Join::And,
                not: false,
                condition: Condition::Compare {
                    field: "年采购额".into(),
                    op: ">=".into(),
                    value: "50万".into(),
                },
            },
            Row {
                group: 1,
                join: Join::parse(Some("or")),
                not: false,
                condition: Condition::Compare {
                    field: "name".into(),
                    op: "=".into(),
                    value: "华为 技术".into(),
                },
            },
        ];
        assert_eq!(
            expression(&rows),
            "年采购额 >= 50万 OR name = \"华为 技术\""
        );
        assert_eq!(Join::parse(None), Join::And);
        assert_eq!(Join::parse(Some("x")), Join::And);
    }

    /// Typed expressions read back into rows say the same expression again.
    #[test]
    fn expressions_read_back_into_rows() {
        let is_field = |f: &str| ["sales_region", "purchase_12m", "name"].contains(&f);
        let same = [
            "华东",
            "NOT 投诉客户",
            "华东 AND 战略型 AND NOT 投诉客户",
            "(sales_region = 华东 OR sales_region = 华南) AND NOT 需求标签",
            "A OR (B AND C)",
            "A AND B AND (C OR D)",
            "purchase_12m >= 50万 AND name = \"华为 技术\"",
            "value_tier IN (战略型, 潜力型) AND NOT 风险标签",
        ];
        for src in same {
            let rows = rows_of(src, is_field, 6, 3).expect(src);
            let again = expression(&rows);
            assert_eq!(
                crate::expr::parse(&again).expect("parses").to_string(),
                crate::expr::parse(src).expect("parses").to_string(),
                "{src} → {rows:?} → {again}"
            );
        }
        let rows = rows_of(
            "(sales_region = 华东 OR sales_region = 华南) AND NOT 需求标签",
            is_field,
            6,
            3,
        )
        .expect("rows");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2].group, 2);
        assert!(rows[2].not);
        assert_eq!(
            rows[0].condition,
            Condition::Compare {
                field: "sales_region".into(),
                op: "=".into(),
                value: "华东".into()
            }
        );
        let refused = [
            ("A AND (B OR (C AND D))", NotBuildable::TooDeep),
            ("NOT (A OR B)", NotBuildable::TooDeep),
            (
                "A AND B AND C AND D AND E AND F AND G",
                NotBuildable::TooMany,
            ),
            (
                "(A OR B) AND (C OR D) AND (E OR F) AND (G OR H)",
                NotBuildable::TooMany,
            ),
        ];
        for (src, why) in refused {
            assert_eq!(rows_of(src, is_field, 6, 3), Err(why), "{src}");
        }
        assert!(matches!(
            rows_of("A AND (", is_field, 6, 3),
            Err(NotBuildable::Syntax(_))
        ));
    }
}
