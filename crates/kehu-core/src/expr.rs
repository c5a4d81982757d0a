//! The boolean condition language of classification rules (and of segment
//! queries): names compared with literals, combined with AND / OR / NOT and
//! parentheses.
//!
//! ```text
//! annual_purchase >= 100万 AND (stability = 稳定 OR complaints = 0)
//! industry IN (金融, 医疗健康) AND NOT region = 华北
//! ```
//!
//! Parsing only checks the shape; what a name means and how a literal is
//! read (100万 as money, 10% as a ratio) is decided by whoever resolves the
//! names. Every node keeps its position (in characters, from 0) so errors can
//! point at it. Keywords are case-insensitive; 且 / 或 / 非 work like AND / OR /
//! NOT, and full-width operators and brackets like their ASCII forms.

use std::fmt;

/// A range of characters in the source text, `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// Whether `ordering` (left compared with right) satisfies the operator.
    pub fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Eq => ordering == Equal,
            CmpOp::Ne => ordering != Equal,
            CmpOp::Lt => ordering == Less,
            CmpOp::Le => ordering != Greater,
            CmpOp::Gt => ordering == Greater,
            CmpOp::Ge => ordering != Less,
        }
    }
}

/// A name: an indicator, a dimension, a field, a tag… (`custom.x` and
/// `scheme.y` are single names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub text: String,
    pub span: Span,
}

/// A literal as written: a number with an optional unit suffix (`100万`,
/// `10%`, `2年`) or text (a bare word or a quoted string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiteralKind {
    Number { digits: String, unit: String },
    Text(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Literal {
    pub kind: LiteralKind,
    pub span: Span,
}

impl Literal {
    /// The literal as text (numbers with their unit), for text comparisons.
    pub fn as_text(&self) -> String {
        match &self.kind {
            LiteralKind::Number { digits, unit } => format!("{digits}{unit}"),
            LiteralKind::Text(t) => t.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Compare {
        name: Name,
        op: CmpOp,
        value: Literal,
    },
    In {
        name: Name,
        values: Vec<Literal>,
        negated: bool,
    },
    /// A bare name: a tag, a class or a yes/no field that must hold.
    Name(Name),
}

/// Canonical text of an expression (keywords upper-case, single spaces,
/// parentheses only where needed).
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn part(f: &mut fmt::Formatter<'_>, e: &Expr, parent_and: bool) -> fmt::Result {
            let wrap = matches!(e, Expr::Or(_)) && parent_and;
            if wrap {
                write!(f, "({e})")
            } else {
                write!(f, "{e}")
            }
        }
        match self {
            Expr::And(xs) | Expr::Or(xs) => {
                let and = matches!(self, Expr::And(_));
                for (i, x) in xs.iter().enumerate() {
                    if i > 0 {
                        f.write_str(if and { " AND " } else { " OR " })?;
                    }
                    part(f, x, and)?;
                }
                Ok(())
            }
            Expr::Not(x) => match **x {
                Expr::And(_) | Expr::Or(_) => write!(f, "NOT ({x})"),
                _ => write!(f, "NOT {x}"),
            },
            Expr::Compare { name, op, value } => {
                write!(f, "{} {} {}", name.text, op.symbol(), show_literal(value))
            }
            Expr::In {
                name,
                values,
                negated,
            } => {
                let list: Vec<String> = values.iter().map(show_literal).collect();
                let not = if *negated { "NOT " } else { "" };
                write!(f, "{} {not}IN ({})", name.text, list.join(", "))
            }
            Expr::Name(n) => f.write_str(&n.text),
        }
    }
}

fn show_literal(l: &Literal) -> String {
    match &l.kind {
        LiteralKind::Number { .. } => l.as_text(),
        LiteralKind::Text(t) => quote_text(t),
    }
}

/// Text as a value of a condition: as it is when it reads as one word,
/// else in double quotes (a keyword, spaces, operators, brackets).
pub fn quote_text(t: &str) -> String {
    if t.chars().all(is_word_char) && !t.is_empty() && keyword(t).is_none() {
        t.to_string()
    } else {
        format!("\"{}\"", t.replace('"', "\\\""))
    }
}

/// Why an expression could not be parsed, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Character position (from 0) of the offending token.
    pub at: usize,
    pub problem: SyntaxProblem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyntaxProblem {
    Empty,
    UnexpectedEnd {
        expected: &'static str,
    },
    Unexpected {
        found: String,
        expected: &'static str,
    },
    UnclosedQuote,
    BadNumber {
        found: String,
    },
}

impl ParseError {
    pub fn message(&self, lang: crate::Lang) -> String {
        let zh = lang == crate::Lang::Zh;
        let pos = self.at + 1;
        let what = |e: &str| expected_text(e, zh);
        match &self.problem {
            SyntaxProblem::Empty => if zh {
                "条件为空"
            } else {
                "the condition is empty"
            }
            .to_string(),
            SyntaxProblem::UnexpectedEnd { expected } => {
                if zh {
                    format!("条件在第 {pos} 个字符处意外结束，缺少{}", what(expected))
                } else {
                    format!(
                        "the condition ends early at character {pos}: expected {}",
                        what(expected)
                    )
                }
            }
            SyntaxProblem::Unexpected { found, expected } => {
                if zh {
                    format!(
                        "第 {pos} 个字符处的“{found}”不符合语法，此处应为{}",
                        what(expected)
                    )
                } else {
                    format!(
                        "unexpected “{found}” at character {pos}: expected {}",
                        what(expected)
                    )
                }
            }
            SyntaxProblem::UnclosedQuote => {
                if zh {
                    format!("第 {pos} 个字符处的引号没有闭合")
                } else {
                    format!("the quote at character {pos} is not closed")
                }
            }
            SyntaxProblem::BadNumber { found } => {
                if zh {
                    format!("第 {pos} 个字符处的数字“{found}”格式不正确")
                } else {
                    format!("the number “{found}” at character {pos} is malformed")
                }
            }
        }
    }
}

fn expected_text(key: &str, zh: bool) -> &'static str {
    match (key, zh) {
        ("name", true) => "名称（指标、字段或标签）",
        ("name", false) => "a name (indicator, field or tag)",
        ("operator", true) => "比较符（= != > >= < <=）、IN、AND、OR 或右括号",
        ("operator", false) => {
            "a comparison (= != > >= < <=), IN, AND, OR or a closing parenthesis"
        }
        ("value", true) => "值（数字或文字）",
        ("value", false) => "a value (a number or text)",
        ("list", true) => "括号中的值列表，例如 IN (华东, 华南)",
        ("list", false) => "a parenthesized list of values, e.g. IN (华东, 华南)",
        ("closing", true) => "右括号“)”",
        ("closing", false) => "a closing parenthesis “)”",
        ("end", true) => "AND、OR 或条件结束",
        ("end", false) => "AND, OR or the end of the condition",
        (_, true) => "其他内容",
        (_, false) => "something else",
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Comma,
    Op(CmpOp),
    And,
    Or,
    Not,
    In,
    Word(String),
    Quoted(String),
}

impl Tok {
    fn shown(&self) -> String {
        match self {
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::Comma => ",".into(),
            Tok::Op(op) => op.symbol().into(),
            Tok::And => "AND".into(),
            Tok::Or => "OR".into(),
            Tok::Not => "NOT".into(),
            Tok::In => "IN".into(),
            Tok::Word(w) => w.clone(),
            Tok::Quoted(q) => format!("\"{q}\""),
        }
    }
}

fn keyword(word: &str) -> Option<Tok> {
    match word.to_ascii_uppercase().as_str() {
        "AND" | "且" | "并且" => Some(Tok::And),
        "OR" | "或" | "或者" => Some(Tok::Or),
        "NOT" | "非" => Some(Tok::Not),
        "IN" => Some(Tok::In),
        _ => None,
    }
}

fn is_word_char(c: char) -> bool {
    !(c.is_whitespace() || "()（）,，=<>!≥≤≠＝＞＜！\"'“”‘’".contains(c))
}

fn lex(src: &str) -> Result<Vec<(Tok, Span)>, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let single = |t: Tok| {
            (
                t,
                Span {
                    start,
                    end: start + 1,
                },
            )
        };
        match c {
            _ if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '(' | '（' => out.push(single(Tok::LParen)),
            ')' | '）' => out.push(single(Tok::RParen)),
            ',' | '，' => out.push(single(Tok::Comma)),
            '≥' => out.push(single(Tok::Op(CmpOp::Ge))),
            '≤' => out.push(single(Tok::Op(CmpOp::Le))),
            '≠' => out.push(single(Tok::Op(CmpOp::Ne))),
            '=' | '＝' | '<' | '＜' | '>' | '＞' | '!' | '！' => {
                let next = chars.get(i + 1).copied();
                let eq_next = matches!(next, Some('=' | '＝'));
                let (op, len) = match (c, eq_next, next) {
                    ('=' | '＝', true, _) => (CmpOp::Eq, 2),
                    ('=' | '＝', false, _) => (CmpOp::Eq, 1),
                    ('<' | '＜', true, _) => (CmpOp::Le, 2),
                    ('<' | '＜', false, Some('>' | '＞')) => (CmpOp::Ne, 2),
                    ('<' | '＜', false, _) => (CmpOp::Lt, 1),
                    ('>' | '＞', true, _) => (CmpOp::Ge, 2),
                    ('>' | '＞', false, _) => (CmpOp::Gt, 1),
                    (_, true, _) => (CmpOp::Ne, 2),
                    // a lone "!" is NOT
                    _ => {
                        out.push(single(Tok::Not));
                        i += 1;
                        continue;
                    }
                };
                out.push((
                    Tok::Op(op),
                    Span {
                        start,
                        end: start + len,
                    },
                ));
                i += len;
                continue;
            }
            '"' | '\'' | '“' | '‘' => {
                let close = match c {
                    '“' => '”',
                    '‘' => '’',
                    other => other,
                };
                let mut text = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => {
                            return Err(ParseError {
                                at: start,
                                problem: SyntaxProblem::UnclosedQuote,
                            })
                        }
                        Some('\\') if chars.get(j + 1).is_some() => {
                            text.push(chars[j + 1]);
                            j += 2;
                        }
                        Some(&ch) if ch == close => break,
                        Some(&ch) => {
                            text.push(ch);
                            j += 1;
                        }
                    }
                }
                out.push((Tok::Quoted(text), Span { start, end: j + 1 }));
                i = j + 1;
                continue;
            }
            _ => {
                let mut j = i;
                while j < chars.len() && is_word_char(chars[j]) {
                    j += 1;
                }
                let word: String = chars[i..j].iter().collect();
                let tok = keyword(&word).unwrap_or(Tok::Word(word));
                out.push((tok, Span { start, end: j }));
                i = j;
                continue;
            }
        }
        i += 1;
    }
    Ok(out)
}

/// Splits a word that starts with a digit into digits and unit suffix
/// (`100万` → `100`, `万`); None when it is not a number.
fn split_number(word: &str, at: usize) -> Result<Option<(String, String)>, ParseError> {
    let first = word.chars().next();
    let signed =
        matches!(first, Some('-' | '+')) && word.chars().nth(1).is_some_and(|c| c.is_ascii_digit());
    if !(first.is_some_and(|c| c.is_ascii_digit()) || signed) {
        return Ok(None);
    }
    let split = word
        .char_indices()
        .skip(usize::from(signed))
        .find(|&(_, c)| !(c.is_ascii_digit() || c == '.'))
        .map_or(word.len(), |(i, _)| i);
    let (digits, unit) = word.split_at(split);
    // Digits after the "unit" (2024-03-12, 2024年3月12日): a date or a code, read as text.
    if unit.chars().any(|c| c.is_ascii_digit()) {
        return Ok(None);
    }
    let bad = digits.matches('.').count() > 1
        || digits.ends_with('.')
        || digits[usize::from(signed)..].starts_with('.');
    if bad {
        return Err(ParseError {
            at,
            problem: SyntaxProblem::BadNumber {
                found: word.to_string(),
            },
        });
    }
    Ok(Some((digits.to_string(), unit.to_string())))
}

/// Parses a condition.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let toks = lex(src)?;
    if toks.is_empty() {
        return Err(ParseError {
            at: 0,
            problem: SyntaxProblem::Empty,
        });
    }
    let mut p = Parser {
        toks,
        pos: 0,
        end: src.chars().count(),
    };
    let e = p.or()?;
    if let Some((t, span)) = p.toks.get(p.pos) {
        return Err(ParseError {
            at: span.start,
            problem: SyntaxProblem::Unexpected {
                found: t.shown(),
                expected: "end",
            },
        });
    }
    Ok(e)
}

struct Parser {
    toks: Vec<(Tok, Span)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(t, _)| t)
    }

    fn next(&mut self, expected: &'static str) -> Result<(Tok, Span), ParseError> {
        match self.toks.get(self.pos) {
            Some(t) => {
                self.pos += 1;
                Ok(t.clone())
            }
            None => Err(ParseError {
                at: self.end,
                problem: SyntaxProblem::UnexpectedEnd { expected },
            }),
        }
    }

    fn unexpected(tok: &Tok, span: Span, expected: &'static str) -> ParseError {
        ParseError {
            at: span.start,
            problem: SyntaxProblem::Unexpected {
                found: tok.shown(),
                expected,
            },
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut parts = vec![self.and()?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut parts = vec![self.unary()?];
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::And(parts)
        })
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.peek() == Some(&Tok::Not) {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let (tok, span) = self.next("name")?;
        match tok {
            Tok::LParen => {
                let inner = self.or()?;
                match self.next("closing")? {
                    (Tok::RParen, _) => Ok(inner),
                    (t, s) => Err(Self::unexpected(&t, s, "closing")),
                }
            }
            Tok::Word(w) | Tok::Quoted(w) => self.after_name(Name { text: w, span }),
            other => Err(Self::unexpected(&other, span, "name")),
        }
    }

    fn after_name(&mut self, name: Name) -> Result<Expr, ParseError> {
        match self.peek() {
            Some(Tok::Op(op)) => {
                let op = *op;
                self.pos += 1;
                let value = self.literal()?;
                Ok(Expr::Compare { name, op, value })
            }
            Some(Tok::In) => {
                self.pos += 1;
                Ok(Expr::In {
                    name,
                    values: self.list()?,
                    negated: false,
                })
            }
            Some(Tok::Not) if matches!(self.toks.get(self.pos + 1), Some((Tok::In, _))) => {
                self.pos += 2;
                Ok(Expr::In {
                    name,
                    values: self.list()?,
                    negated: true,
                })
            }
            None | Some(Tok::And | Tok::Or | Tok::RParen) => Ok(Expr::Name(name)),
            Some(_) => {
                let (t, s) = self.toks[self.pos].clone();
                Err(Self::unexpected(&t, s, "operator"))
            }
        }
    }

    fn literal(&mut self) -> Result<Literal, ParseError> {
        let (tok, span) = self.next("value")?;
        match tok {
            Tok::Quoted(t) => Ok(Literal {
                kind: LiteralKind::Text(t),
                span,
            }),
            Tok::Word(w) => match split_number(&w, span.start)? {
                Some((digits, unit)) => Ok(Literal {
                    kind: LiteralKind::Number { digits, unit },
                    span,
                }),
                None => Ok(Literal {
                    kind: LiteralKind::Text(w),
                    span,
                }),
            },
            other => Err(Self::unexpected(&other, span, "value")),
        }
    }

    fn list(&mut self) -> Result<Vec<Literal>, ParseError> {
        match self.next("list")? {
            (Tok::LParen, _) => {}
            (t, s) => return Err(Self::unexpected(&t, s, "list")),
        }
        let mut values = vec![self.literal()?];
        loop {
            match self.next("closing")? {
                (Tok::Comma, _) => values.push(self.literal()?),
                (Tok::RParen, _) => return Ok(values),
                (t, s) => return Err(Self::unexpected(&t, s, "closing")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_canonically() {
        let cases = [
            ("a >= 100万", "a >= 100万"),
            ("a>=100万 and b=稳定", "a >= 100万 AND b = 稳定"),
            ("a = 1 OR b = 2 AND c = 3", "a = 1 OR b = 2 AND c = 3"),
            ("(a = 1 OR b = 2) AND c = 3", "(a = 1 OR b = 2) AND c = 3"),
            ("NOT (a = 1 OR b = 2)", "NOT (a = 1 OR b = 2)"),
            (
                "not 投诉客户 且 区域 = 华东",
                "NOT 投诉客户 AND 区域 = 华东",
            ),
            (
                "industry in (金融, \"医疗 健康\")",
                "industry IN (金融, \"医疗 健康\")",
            ),
            ("industry NOT IN (金融)", "industry NOT IN (金融)"),
            ("growth ≥ 20% 或 x ≠ 3", "growth >= 20% OR x != 3"),
            ("x ＞＝ 5 且 y <> -2.5", "x >= 5 AND y != -2.5"),
            ("（a = 1）", "a = 1"),
            ("custom.level = 'A级'", "custom.level = A级"),
            ("!a", "NOT a"),
        ];
        for (src, canonical) in cases {
            let e = parse(src).unwrap_or_else(|err| panic!("{src}: {err:?}"));
            assert_eq!(e.to_string(), canonical, "{src}");
            // The canonical text parses to the same tree (spans aside).
            assert_eq!(
                parse(canonical).map(|e| e.to_string()),
                Ok(canonical.to_string())
            );
        }
    }

    #[test]
    fn numbers_keep_their_unit() {
        let Ok(Expr::Compare { value, .. }) = parse("a < 99.99万") else {
            panic!("compare")
        };
        assert_eq!(
            value.kind,
            LiteralKind::Number {
                digits: "99.99".into(),
                unit: "万".into()
            }
        );
        assert_eq!(value.span, Span { start: 4, end: 10 });
    }

    #[test]
    fn errors_point_at_the_place() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 0, "empty"),
            ("a >=", 4, "end"),
            ("a >= 1 AND", 10, "end"),
            ("a >= 1 b", 7, "unexpected"),
            ("(a = 1", 6, "end"),
            ("a = 1)", 5, "unexpected"),
            ("a = \"x", 4, "quote"),
            ("a = 1.2.3", 4, "number"),
            ("a IN 华东", 5, "unexpected"),
            ("a IN (华东 华南)", 9, "unexpected"),
            ("AND a = 1", 0, "unexpected"),
            ("a = = 1", 4, "unexpected"),
            ("区域 == 华东 且 (", 12, "end"),
        ];
        for &(src, at, kind) in cases {
            let err = parse(src).expect_err(src);
            assert_eq!(err.at, at, "{src}: {err:?}");
            let matches = match kind {
                "empty" => err.problem == SyntaxProblem::Empty,
                "end" => matches!(err.problem, SyntaxProblem::UnexpectedEnd { .. }),
                "unexpected" => matches!(err.problem, SyntaxProblem::Unexpected { .. }),
                "quote" => err.problem == SyntaxProblem::UnclosedQuote,
                "number" => matches!(err.problem, SyntaxProblem::BadNumber { .. }),
                _ => false,
            };
            assert!(matches, "{src}: {err:?}");
            assert!(
                err.message(crate::Lang::Zh)
                    .contains(&format!("{}", at + 1))
                    || kind == "empty"
            );
            assert!(!err.message(crate::Lang::En).is_empty());
        }
    }
}
