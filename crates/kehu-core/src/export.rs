//! Exported cells that a spreadsheet will not run: a value that starts with
//! `=`, `+`, `-`, `@`, a tab or a carriage return is read as a formula by
//! Excel and its kin (CSV injection, OWASP), so it gets a leading `'`.

use std::borrow::Cow;

/// The value as it may go into a CSV or XLSX cell.
pub fn safe_cell(value: &str) -> Cow<'_, str> {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r' | '＝' | '＋' | '－' | '＠') => {
            Cow::Owned(format!("'{value}"))
        }
        _ => Cow::Borrowed(value),
    }
}

/// One CSV field: quoted when it holds a comma, quote or line break
/// (quotes doubled), after [`safe_cell`].
pub fn csv_field(value: &str) -> String {
    let v = safe_cell(value);
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_defused_and_fields_quoted() {
        let cases = [
            ("杭州星湖有限公司", "杭州星湖有限公司"),
            (
                "=HYPERLINK(\"http://x\")",
                "\"'=HYPERLINK(\"\"http://x\"\")\"",
            ),
            ("+86 571", "'+86 571"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("＝1+1", "'＝1+1"),
            ("a,b", "\"a,b\""),
            ("line\nbreak", "\"line\nbreak\""),
            ("", ""),
            ("12.50", "12.50"),
        ];
        for (raw, want) in cases {
            assert_eq!(csv_field(raw), want, "{raw:?}");
        }
    }
}
