//! Reports as PDF: the tables of the XLSX laid out on A4 landscape pages —
//! each table under its name, its header row repeated at the top of every
//! page it runs onto, cells too wide for their column cut with "…", a
//! footer with the page number — in a CJK font of the system (subset into
//! the file by krilla, so the PDF opens anywhere).
//!
//! The font: `KEHU_PDF_FONT` (a TrueType/OpenType file or collection), or
//! the first of [`FONT_PATHS`] present (Debian's `fonts-wqy-microhei` or
//! `fonts-noto-cjk`). Widths are estimated (a CJK character one em, other
//! characters 0.55 em), which is close for these fonts and keeps the
//! layout free of a shaping pass per cell.

use crate::error::ApiError;
use krilla::color::luma;
use krilla::geom::{PathBuilder, Point};
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::text::{Font, TextDirection};
use krilla::Document;
use std::sync::OnceLock;

/// Where a CJK font is looked for when `KEHU_PDF_FONT` is not set.
pub const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
];

// A4 landscape, in points.
const PAGE_WIDTH: f32 = 842.0;
const PAGE_HEIGHT: f32 = 595.0;
const MARGIN: f32 = 36.0;
const TITLE_SIZE: f32 = 14.0;
const HEADING_SIZE: f32 = 11.0;
const CELL_SIZE: f32 = 8.5;
/// The smallest type a wide table is set in.
const MIN_CELL_SIZE: f32 = 6.0;
/// Row height as a multiple of the type size.
const ROW_FACTOR: f32 = 1.55;
const ROW_HEIGHT: f32 = CELL_SIZE * ROW_FACTOR;
const CELL_PADDING: f32 = 5.0;
/// No column is wider than this share of the page, so one long column
/// cannot squeeze out the others.
const MAX_COLUMN_SHARE: f32 = 0.35;
/// What the first column keeps when the columns must give way.
const FIRST_COLUMN_SHARE: f32 = 0.25;
/// Rows read to size the columns (the widest cells are usually early:
/// totals, names; later ones are cut if wider).
const SIZING_ROWS: usize = 500;

/// One table of the document: its name and its rows under a header.
pub struct PdfTable<'a> {
    pub name: &'a str,
    pub header: &'a [String],
    pub rows: &'a [Vec<String>],
}

/// The font, read once found (a missing one is looked for again on the
/// next PDF, so installing it needs no restart).
fn font() -> Result<Font, ApiError> {
    static FONT: OnceLock<Font> = OnceLock::new();
    if let Some(f) = FONT.get() {
        return Ok(f.clone());
    }
    let f = load_font().map_err(|(zh, en)| ApiError::Unavailable { zh, en })?;
    Ok(FONT.get_or_init(|| f).clone())
}

fn load_font() -> Result<Font, (String, String)> {
    let configured = std::env::var("KEHU_PDF_FONT")
        .ok()
        .filter(|p| !p.is_empty());
    let path = match &configured {
        Some(p) => p.clone(),
        None => FONT_PATHS
            .iter()
            .find(|p| std::path::Path::new(p).exists())
            .map(|p| p.to_string())
            .ok_or_else(|| {
                (
                    "生成 PDF 需要中文字体：请安装 fonts-wqy-microhei 或设置 KEHU_PDF_FONT"
                        .to_string(),
                    "PDF needs a CJK font: install fonts-wqy-microhei or set KEHU_PDF_FONT"
                        .to_string(),
                )
            })?,
    };
    let bytes = std::fs::read(&path).map_err(|e| {
        (
            format!("无法读取字体 {path}：{e}"),
            format!("cannot read the font {path}: {e}"),
        )
    })?;
    Font::new(bytes.into(), 0).ok_or_else(|| {
        (
            format!("{path} 不是可用的字体文件"),
            format!("{path} is not a usable font file"),
        )
    })
}

/// The estimated width of `text` at `size` points.
fn width(text: &str, size: f32) -> f32 {
    text.chars()
        .map(|c| if is_wide(c) { 1.0 } else { 0.55 })
        .sum::<f32>()
        * size
}

fn is_wide(c: char) -> bool {
    !c.is_ascii() && !matches!(c, '\u{00a0}'..='\u{024f}')
}

/// `text` cut to fit `room` points, with "…" when cut.
fn fit(text: &str, size: f32, room: f32) -> String {
    let text = text.replace(['\n', '\r', '\t'], " ");
    if width(&text, size) <= room {
        return text;
    }
    let ellipsis = width("…", size);
    let mut used = 0.0;
    let mut out = String::new();
    for c in text.chars() {
        let w = width(c.encode_utf8(&mut [0; 4]), size);
        if used + w + ellipsis > room {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// `text` in lines of at most `room` points, at most `max` of them (the
/// last cut with "…" when more would be needed).
fn wrap(text: &str, size: f32, room: f32, max: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    let mut used = 0.0;
    for c in text.chars() {
        let w = width(c.encode_utf8(&mut [0; 4]), size);
        if used + w > room && !lines.last().is_some_and(String::is_empty) {
            lines.push(String::new());
            used = 0.0;
        }
        used += w;
        if let Some(line) = lines.last_mut() {
            line.push(c);
        }
    }
    if lines.len() > max {
        let rest: String = lines[max - 1..].concat();
        lines.truncate(max - 1);
        lines.push(fit(&rest, size, room));
    }
    lines
}

/// Column widths: each as wide as its widest cell (the first rows read)
/// and half its header (a header may take two lines), at most a share of
/// the page; when they do not fit, the widest are narrowed first.
fn column_widths(table: &PdfTable<'_>, room: f32, size: f32) -> Vec<f32> {
    let mut widths: Vec<f32> = table
        .header
        .iter()
        .map(|h| width(h, size) / 2.0 + size)
        .collect();
    for row in table.rows.iter().take(SIZING_ROWS) {
        for (i, cell) in row.iter().enumerate().take(widths.len()) {
            widths[i] = widths[i].max(width(cell, size));
        }
    }
    let cap = room * MAX_COLUMN_SHARE;
    for w in &mut widths {
        *w = (*w + 2.0 * CELL_PADDING).min(cap);
    }
    // Too wide together: the first column (what the row is about) keeps
    // up to a quarter of the page; of the others the widest give way first
    // (one cap for all, found by bisection), so short numbers keep their room.
    if widths.iter().sum::<f32>() > room && widths.len() > 1 {
        let first = widths[0].min(room * FIRST_COLUMN_SHARE);
        let others = room - first;
        let (mut low, mut high) = (0.0_f32, cap);
        for _ in 0..40 {
            let mid = (low + high) / 2.0;
            if widths[1..].iter().map(|w| w.min(mid)).sum::<f32>() > others {
                high = mid;
            } else {
                low = mid;
            }
        }
        for w in &mut widths[1..] {
            *w = w.min(low);
        }
        let rest: f32 = widths[1..].iter().sum();
        widths[0] = widths[0].min(room - rest);
    } else if let Some(w) = widths.first_mut() {
        *w = w.min(room);
    }
    widths
}

/// How one table is set: its type size (smaller for wide tables, down to
/// [`MIN_CELL_SIZE`], so that numbers stay whole), row height and columns.
struct Layout {
    size: f32,
    row: f32,
    widths: Vec<f32>,
}

impl Layout {
    fn of(table: &PdfTable<'_>, room: f32) -> Layout {
        // As wide as the cells want (a long text column counted at its cap).
        let natural: f32 = column_widths(table, f32::INFINITY, CELL_SIZE)
            .iter()
            .map(|w| w.min(room * MAX_COLUMN_SHARE))
            .sum();
        let size = if natural > room {
            (CELL_SIZE * room / natural).max(MIN_CELL_SIZE)
        } else {
            CELL_SIZE
        };
        Layout {
            size,
            row: size * ROW_FACTOR,
            widths: column_widths(table, room, size),
        }
    }

    /// Where the text of a row starting at `top` sits (its baseline).
    fn baseline(&self, top: f32) -> f32 {
        top + self.row - self.size * 0.4
    }
}

/// Draws on one page after another; a new page starts when a row no
/// longer fits.
struct Pages<'a> {
    document: Document,
    font: Font,
    title: &'a str,
    footer: &'a str,
    /// Drawing operations of the page being filled, flushed when it is full.
    page: Vec<Mark>,
    y: f32,
    count: usize,
}

/// What goes on a page.
enum Mark {
    Text {
        x: f32,
        y: f32,
        size: f32,
        text: String,
    },
    Line {
        x1: f32,
        x2: f32,
        y: f32,
        width: f32,
    },
}

impl Pages<'_> {
    fn text(&mut self, x: f32, y: f32, size: f32, text: String) {
        self.page.push(Mark::Text { x, y, size, text });
    }

    fn line(&mut self, x1: f32, x2: f32, y: f32, width: f32) {
        self.page.push(Mark::Line { x1, x2, y, width });
    }

    /// Room for `height` more points, starting a page if needed; true when
    /// a page was started.
    fn room(&mut self, height: f32) -> bool {
        if self.y + height <= PAGE_HEIGHT - MARGIN - ROW_HEIGHT {
            return false;
        }
        self.flush();
        self.start();
        true
    }

    fn start(&mut self) {
        self.y = MARGIN + TITLE_SIZE;
        let title = self.title.to_string();
        self.text(MARGIN, self.y, TITLE_SIZE, title);
        self.y += TITLE_SIZE;
    }

    /// Writes the page being filled into the document, with its footer.
    fn flush(&mut self) {
        self.count += 1;
        let footer = format!(
            "{} · 第 {} 页 / page {}",
            self.footer, self.count, self.count
        );
        let marks = std::mem::take(&mut self.page);
        let Some(settings) = PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT) else {
            return;
        };
        let mut page = self.document.start_page_with(settings);
        let mut surface = page.surface();
        let black = || luma::Color::black().into();
        for mark in marks.iter().chain(std::iter::once(&Mark::Text {
            x: MARGIN,
            y: PAGE_HEIGHT - MARGIN / 2.0,
            size: CELL_SIZE,
            text: footer.clone(),
        })) {
            match mark {
                Mark::Text { x, y, size, text } => {
                    surface.set_stroke(None);
                    surface.set_fill(Some(Fill {
                        paint: black(),
                        ..Fill::default()
                    }));
                    surface.draw_text(
                        Point::from_xy(*x, *y),
                        self.font.clone(),
                        *size,
                        text,
                        false,
                        TextDirection::Auto,
                    );
                }
                Mark::Line { x1, x2, y, width } => {
                    let mut path = PathBuilder::new();
                    path.move_to(*x1, *y);
                    path.line_to(*x2, *y);
                    if let Some(path) = path.finish() {
                        surface.set_fill(None);
                        surface.set_stroke(Some(Stroke {
                            paint: black(),
                            width: *width,
                            ..Stroke::default()
                        }));
                        surface.draw_path(&path);
                    }
                }
            }
        }
        surface.finish();
        page.finish();
    }
}

/// Lines a header cell may take.
const HEADER_LINES: usize = 3;

/// The header row of `table` at the current position, each cell wrapped.
fn header_row(pages: &mut Pages<'_>, table: &PdfTable<'_>, layout: &Layout) {
    let top = pages.y;
    pages.line(MARGIN, PAGE_WIDTH - MARGIN, top, 0.8);
    let cells: Vec<Vec<String>> = table
        .header
        .iter()
        .zip(&layout.widths)
        .map(|(h, w)| wrap(h, layout.size, w - 2.0 * CELL_PADDING, HEADER_LINES))
        .collect();
    let lines = cells.iter().map(Vec::len).max().unwrap_or(1);
    let mut x = MARGIN;
    for (cell, w) in cells.into_iter().zip(&layout.widths) {
        for (i, line) in cell.into_iter().enumerate() {
            let y = layout.baseline(top + layout.row * i as f32);
            pages.text(x + CELL_PADDING, y, layout.size, line);
        }
        x += w;
    }
    pages.y += layout.row * lines as f32;
    pages.line(MARGIN, PAGE_WIDTH - MARGIN, pages.y, 0.5);
}

/// A PDF of `tables` under `title`; `footer` (e.g. when it was made) on
/// every page with the page number.
pub fn tables_pdf(title: &str, footer: &str, tables: &[PdfTable<'_>]) -> Result<Vec<u8>, ApiError> {
    let mut pages = Pages {
        document: Document::new(),
        font: font()?,
        title,
        footer,
        page: Vec::new(),
        y: 0.0,
        count: 0,
    };
    pages.start();
    let room = PAGE_WIDTH - 2.0 * MARGIN;
    for table in tables {
        let layout = Layout::of(table, room);
        // The name, the header and a first row together.
        pages.room(HEADING_SIZE * 2.0 + layout.row * (HEADER_LINES as f32 + 1.0));
        pages.y += HEADING_SIZE;
        pages.text(
            MARGIN,
            pages.y + HEADING_SIZE,
            HEADING_SIZE,
            table.name.to_string(),
        );
        pages.y += HEADING_SIZE * 1.6;
        header_row(&mut pages, table, &layout);
        if table.rows.is_empty() {
            let y = layout.baseline(pages.y);
            pages.text(
                MARGIN + CELL_PADDING,
                y,
                layout.size,
                "（无数据 / no rows）".into(),
            );
            pages.y += layout.row;
        }
        for row in table.rows {
            if pages.room(layout.row) {
                // A new page: the header again.
                header_row(&mut pages, table, &layout);
            }
            let mut x = MARGIN;
            let y = layout.baseline(pages.y);
            for (cell, w) in row.iter().zip(&layout.widths) {
                let text = fit(cell, layout.size, w - 2.0 * CELL_PADDING);
                pages.text(x + CELL_PADDING, y, layout.size, text);
                x += w;
            }
            pages.y += layout.row;
        }
        pages.line(MARGIN, PAGE_WIDTH - MARGIN, pages.y, 0.8);
    }
    pages.flush();
    pages
        .document
        .finish()
        .map_err(|e| ApiError::Internal(format!("writing the PDF: {e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_cut_to_their_column() {
        assert_eq!(fit("战略型", 10.0, 100.0), "战略型");
        let cut = fit("华东精密机械有限公司", 10.0, 45.0);
        assert!(cut.ends_with('…') && width(&cut, 10.0) <= 45.0, "{cut}");
        assert_eq!(fit("a\nb", 10.0, 100.0), "a b");
        assert!(width("ab", 10.0) < width("战略", 10.0));
    }

    #[test]
    fn headers_wrap_onto_at_most_three_lines() {
        assert_eq!(wrap("复购率", 10.0, 100.0, 3), ["复购率"]);
        assert_eq!(
            wrap("有标签的复购率", 10.0, 30.0, 3),
            ["有标签", "的复购", "率"]
        );
        let cut = wrap("一二三四五六七八九十", 10.0, 20.0, 3);
        assert_eq!(cut.len(), 3);
        assert!(cut[2].ends_with('…'), "{cut:?}");
    }

    #[test]
    fn columns_fit_the_page() {
        let header: Vec<String> = (0..30).map(|i| format!("很长很长的列名{i}")).collect();
        let rows = vec![header.clone()];
        let table = PdfTable {
            name: "t",
            header: &header,
            rows: &rows,
        };
        let widths = column_widths(&table, 770.0, CELL_SIZE);
        let total: f32 = widths.iter().sum();
        assert!((total - 770.0).abs() < 0.5, "{total}");
        // A long first column keeps its quarter; short numbers keep their room.
        let header: Vec<String> = ["标签", "客户", "占比"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut row =
            vec!["基础标签/细分行业/IT服务业/云计算/很长的名字很长的名字很长".to_string()];
        row.extend(["300".to_string(), "100.0%".to_string()]);
        let mut header_wide = header.clone();
        let mut row_wide = row.clone();
        for i in 0..12 {
            header_wide.push(format!("列{i}"));
            row_wide.push("一二三四五六".into());
        }
        let rows = vec![row_wide];
        let table = PdfTable {
            name: "t",
            header: &header_wide,
            rows: &rows,
        };
        let widths = column_widths(&table, 770.0, CELL_SIZE);
        assert!(
            (widths[0] - 770.0 * FIRST_COLUMN_SHARE).abs() < 0.5,
            "{widths:?}"
        );
        assert!(
            widths[1] >= width("300", CELL_SIZE) + 2.0 * CELL_PADDING - 0.01,
            "{widths:?}"
        );
        assert!(widths.iter().sum::<f32>() <= 770.0 + 0.5);
        let narrow = ["a".to_string(), "一".repeat(200)];
        let table = PdfTable {
            name: "t",
            header: &narrow,
            rows: &[],
        };
        let widths = column_widths(&table, 770.0, CELL_SIZE);
        assert!(widths[1] <= 770.0 * MAX_COLUMN_SHARE + 0.01, "{widths:?}");
    }
}
