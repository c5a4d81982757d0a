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
}
