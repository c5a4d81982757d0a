//! Tables from the files people bring: CSV in UTF-8 (with or without a
//! BOM), UTF-16 with a BOM, or GBK/GB18030 as Chinese Excel saves it; comma,
//! tab, semicolon or bar as delimiter — read as a stream, row by row, so a
//! file of any size takes bounded memory; or the first sheet of an XLSX /
//! XLS / ODS workbook (held whole: a sheet has at most 1,048,576 rows).

use encoding_rs::{Encoding, GB18030, UTF_8};
use encoding_rs_io::DecodeReaderBytesBuilder;
use std::fs::File;
use std::io::{Cursor, Read};
use std::path::Path;

/// How much of the file is looked at to guess encoding and delimiter.
const SNIFF_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum TabularError {
    #[error("{path}: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("无法读取 / cannot read: {0}")]
    Read(std::io::Error),
    #[error("文件为空，没有表头 / the file is empty: no header row")]
    NoHeader,
    #[error("无法读取工作簿 / cannot read the workbook: {0}")]
    Workbook(String),
    #[error("第 {row} 行无法读取 / row {row} cannot be read: {reason}")]
    Row { row: u64, reason: String },
}

/// A CSV being read: its header and then its rows.
pub struct CsvTable {
    pub headers: Vec<String>,
    pub encoding: &'static Encoding,
    pub delimiter: u8,
    records: csv::StringRecordsIntoIter<Box<dyn Read + Send>>,
}

/// One data row: its number as a spreadsheet shows it (the header is row 1)
/// and its cells, trimmed. A ragged row has fewer or more cells than headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub number: u64,
    pub cells: Vec<String>,
}

/// The encoding of a file starting with `head`: a BOM decides; otherwise
/// UTF-8 if it is valid UTF-8 (a character cut at the end of the sample
/// counts as valid), else GB18030 (a superset of GBK and GB2312).
pub fn sniff_encoding(head: &[u8]) -> &'static Encoding {
    if let Some((enc, _)) = Encoding::for_bom(head) {
        return enc;
    }
    match std::str::from_utf8(head) {
        Ok(_) => UTF_8,
        Err(e) if e.error_len().is_none() => UTF_8,
        Err(_) => GB18030,
    }
}

/// The delimiter of the first line: the most frequent of , \t ; | outside quotes.
pub fn sniff_delimiter(first_line: &str) -> u8 {
    let mut counts = [(b',', 0usize), (b'\t', 0), (b';', 0), (b'|', 0)];
    let mut quoted = false;
    for c in first_line.bytes() {
        if c == b'"' {
            quoted = !quoted;
        } else if !quoted {
            if let Some(slot) = counts.iter_mut().find(|(d, _)| *d == c) {
                slot.1 += 1;
            }
        }
    }
    // Ties go to the earlier (comma first).
    let best = counts
        .iter()
        .copied()
        .fold((b',', 0), |best, c| if c.1 > best.1 { c } else { best });
    best.0
}

impl CsvTable {
    pub fn open(path: &Path) -> Result<CsvTable, TabularError> {
        let file = File::open(path).map_err(|source| TabularError::Open {
            path: path.display().to_string(),
            source,
        })?;
        CsvTable::from_reader(file).map_err(|e| match e {
            TabularError::Read(source) => TabularError::Open {
                path: path.display().to_string(),
                source,
            },
            other => other,
        })
    }

    pub fn from_reader(mut input: impl Read + Send + 'static) -> Result<CsvTable, TabularError> {
        let mut head = Vec::with_capacity(SNIFF_BYTES);
        (&mut input)
            .take(SNIFF_BYTES as u64)
            .read_to_end(&mut head)
            .map_err(TabularError::Read)?;
        let encoding = sniff_encoding(&head);
        let (text, _, _) = encoding.decode(&head);
        let first_line = text
            .trim_start_matches('\u{feff}')
            .lines()
            .next()
            .unwrap_or("");
        let delimiter = sniff_delimiter(first_line);
        let stream = Cursor::new(head).chain(input);
        let decoded: Box<dyn Read + Send> = Box::new(
            DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding))
                .bom_override(true)
                .strip_bom(true)
                .build(stream),
        );
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(decoded);
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| TabularError::Row {
                row: 1,
                reason: e.to_string(),
            })?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_string())
            .collect();
        if headers.iter().all(String::is_empty) {
            return Err(TabularError::NoHeader);
        }
        Ok(CsvTable {
            headers,
            encoding,
            delimiter,
            records: reader.into_records(),
        })
    }
}

impl Iterator for CsvTable {
    type Item = Result<Row, TabularError>;

    fn next(&mut self) -> Option<Self::Item> {
        let record = self.records.next()?;
        Some(match record {
            Ok(r) => Ok(Row {
                // Line of the record's start; the header is line 1.
                number: r.position().map_or(0, |p| p.line()),
                cells: r.iter().map(str::to_string).collect(),
            }),
            Err(e) => Err(TabularError::Row {
                row: e.position().map_or(0, |p| p.line()),
                reason: e.to_string(),
            }),
        })
    }
}

/// A table from a CSV file or a workbook's first sheet, by the file's extension.
pub struct Table {
    pub headers: Vec<String>,
    /// "csv" or "spreadsheet".
    pub format: &'static str,
    rows: Box<dyn Iterator<Item = Result<Row, TabularError>> + Send>,
}

const SPREADSHEET_EXTENSIONS: &[&str] = &["xlsx", "xlsm", "xlsb", "xls", "ods"];

/// Whether a file name names a workbook (by its extension).
fn is_workbook(name: &str) -> bool {
    let extension = Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    SPREADSHEET_EXTENSIONS.contains(&extension.as_str())
}

impl Table {
    pub fn open(path: &Path) -> Result<Table, TabularError> {
        if is_workbook(&path.to_string_lossy()) {
            let fail =
                |e: calamine::Error| TabularError::Workbook(format!("{}: {e}", path.display()));
            let book = calamine::open_workbook_auto(path).map_err(fail)?;
            return Table::first_sheet(book, &path.display().to_string());
        }
        let csv = CsvTable::open(path)?;
        Ok(Table::of_csv(csv))
    }

    /// A table from a file's bytes (an upload), read by `name`'s extension.
    pub fn from_bytes<B>(name: &str, bytes: B) -> Result<Table, TabularError>
    where
        B: AsRef<[u8]> + Clone + Send + 'static,
    {
        if is_workbook(name) {
            let book = calamine::open_workbook_auto_from_rs(Cursor::new(bytes))
                .map_err(|e| TabularError::Workbook(format!("{name}: {e}")))?;
            return Table::first_sheet(book, name);
        }
        Ok(Table::of_csv(CsvTable::from_reader(Cursor::new(bytes))?))
    }

    fn of_csv(csv: CsvTable) -> Table {
        Table {
            headers: csv.headers.clone(),
            format: "csv",
            rows: Box::new(csv),
        }
    }

    fn first_sheet<RS: std::io::Read + std::io::Seek>(
        mut book: calamine::Sheets<RS>,
        name: &str,
    ) -> Result<Table, TabularError> {
        use calamine::Reader;
        let fail = |e: calamine::Error| TabularError::Workbook(format!("{name}: {e}"));
        let range = book
            .worksheet_range_at(0)
            .ok_or(TabularError::NoHeader)?
            .map_err(fail)?;
        let first_row = range.start().map_or(0, |(row, _)| row as u64);
        let first_col = range.start().map_or(0, |(_, col)| col as usize);
        // Cells left of the used range are empty columns the header still counts.
        let mut rows = range.rows().enumerate().map(move |(i, cells)| {
            let mut out = vec![String::new(); first_col];
            out.extend(cells.iter().map(cell_text));
            while out.last().is_some_and(String::is_empty) {
                out.pop();
            }
            Row {
                number: first_row + i as u64 + 1,
                cells: out,
            }
        });
        let header = rows.next().ok_or(TabularError::NoHeader)?;
        if header.number != 1 {
            return Err(TabularError::Row {
                row: 1,
                reason: "第一行应为表头 / the first row must be the header".into(),
            });
        }
        if header.cells.iter().all(String::is_empty) {
            return Err(TabularError::NoHeader);
        }
        let rows: Vec<Row> = rows.collect();
        Ok(Table {
            headers: header.cells,
            format: "spreadsheet",
            rows: Box::new(rows.into_iter().map(Ok)),
        })
    }

    /// The position of the column named `name` (headers compared trimmed).
    pub fn column(&self, name: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == name.trim())
    }
}

impl Iterator for Table {
    type Item = Result<Row, TabularError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rows.next()
    }
}

/// A spreadsheet cell as the text a person sees: whole numbers without
/// ".0" (a mobile stored as a number stays 13800138000), dates as
/// YYYY-MM-DD (with the time when there is one), errors as their code
/// (#DIV/0!, which validation then refuses).
fn cell_text(cell: &calamine::Data) -> String {
    use calamine::Data;
    match cell {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.trim().to_string(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) => match dt.as_datetime() {
            Some(t) if t.time() == chrono::NaiveTime::MIN => t.date().to_string(),
            Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
            None => dt.as_f64().to_string(),
        },
        Data::Error(e) => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: Vec<u8>) -> (Vec<String>, Vec<Vec<String>>, &'static str, u8) {
        let t = CsvTable::from_reader(Cursor::new(bytes)).expect("opens");
        let (enc, delim, headers) = (t.encoding.name(), t.delimiter, t.headers.clone());
        let rows = t.map(|r| r.expect("row").cells).collect();
        (headers, rows, enc, delim)
    }

    #[test]
    fn utf8_with_and_without_bom_gbk_and_utf16_read_the_same() {
        let text = "客户编号,客户名称\nC001,杭州某某科技有限公司\n";
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice(text.as_bytes());
        let (gbk, _, _) = GB18030.encode(text);
        let mut utf16 = vec![0xFF, 0xFE];
        for u in text.encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        let want_rows = vec![vec!["C001".to_string(), "杭州某某科技有限公司".to_string()]];
        for (bytes, enc) in [
            (text.as_bytes().to_vec(), "UTF-8"),
            (bom, "UTF-8"),
            (gbk.into_owned(), "gb18030"),
            (utf16, "UTF-16LE"),
        ] {
            let (headers, rows, got_enc, _) = read(bytes);
            assert_eq!(headers, ["客户编号", "客户名称"], "{enc}");
            assert_eq!(rows, want_rows, "{enc}");
            assert_eq!(got_enc, enc);
        }
    }

    #[test]
    fn delimiters_are_sniffed_outside_quotes() {
        let cases = [
            ("a,b,c", b','),
            ("a\tb\tc", b'\t'),
            ("a;b;c", b';'),
            ("a|b|c", b'|'),
            ("\"x,y,z\";b", b';'),
            ("single", b','),
        ];
        for (line, want) in cases {
            assert_eq!(sniff_delimiter(line), want, "{line:?}");
        }
        let (_, rows, _, delim) = read(b"id\tname\n1\t a b \n".to_vec());
        assert_eq!(delim, b'\t');
        assert_eq!(rows, vec![vec!["1".to_string(), "a b".to_string()]]);
    }

    #[test]
    fn ragged_rows_keep_their_cells_and_numbers() {
        let (_, rows, _, _) = read(b"a,b\n1\n2,3,4\n\"multi\nline\",5\n6,7\n".to_vec());
        assert_eq!(rows[0], vec!["1"]);
        assert_eq!(rows[1], vec!["2", "3", "4"]);
        assert_eq!(rows[2], vec!["multi\nline", "5"]);
        let t =
            CsvTable::from_reader(Cursor::new(b"a,b\n1,2\n\"x\ny\",3\n4,5\n".to_vec())).unwrap();
        let numbers: Vec<u64> = t.map(|r| r.unwrap().number).collect();
        assert_eq!(numbers, [2, 3, 5]);
    }

    #[test]
    fn the_first_sheet_of_a_workbook_reads_like_a_csv() {
        let dir = std::env::temp_dir().join(format!("kehu-tabular-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("客户.xlsx");
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        let date = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
        for (col, h) in [
            "客户编号",
            "客户名称",
            "手机",
            "年采购额(万元)",
            "合作起始时间",
        ]
        .iter()
        .enumerate()
        {
            sheet.write_string(0, col as u16, *h).unwrap();
        }
        sheet.write_string(1, 0, "C001").unwrap();
        sheet.write_string(1, 1, "  杭州某某科技有限公司 ").unwrap();
        sheet.write_number(1, 2, 13800138000.0).unwrap();
        sheet.write_number(1, 3, 99.99).unwrap();
        let day = rust_xlsxwriter::ExcelDateTime::from_ymd(2022, 3, 12).unwrap();
        sheet.write_datetime_with_format(1, 4, &day, &date).unwrap();
        sheet.write_string(3, 0, "C002").unwrap();
        book.save(&path).unwrap();

        let table = Table::open(&path).expect("opens");
        assert_eq!(table.format, "spreadsheet");
        assert_eq!(table.column("手机"), Some(2));
        let rows: Vec<Row> = table.map(|r| r.unwrap()).collect();
        assert_eq!(
            rows[0],
            Row {
                number: 2,
                cells: [
                    "C001",
                    "杭州某某科技有限公司",
                    "13800138000",
                    "99.99",
                    "2022-03-12"
                ]
                .map(String::from)
                .to_vec()
            }
        );
        assert_eq!(
            rows[1],
            Row {
                number: 3,
                cells: vec![]
            }
        );
        assert_eq!(
            rows[2],
            Row {
                number: 4,
                cells: vec!["C002".to_string()]
            }
        );

        std::fs::write(dir.join("broken.xlsx"), b"not a zip").unwrap();
        assert!(matches!(
            Table::open(&dir.join("broken.xlsx")),
            Err(TabularError::Workbook(_))
        ));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn an_empty_file_has_no_header() {
        assert!(matches!(
            CsvTable::from_reader(Cursor::new(Vec::new())),
            Err(TabularError::NoHeader)
        ));
    }
}
