//! Aligned text tables for listings: columns padded to their widest cell (in terminal
//! columns, by Unicode display width: a CJK character or an emoji takes two, a combining
//! mark none), two spaces apart, an optional colour per cell that never affects the
//! alignment.

use unicode_width::UnicodeWidthStr;

/// One cell: its text and, on a colour terminal, the ANSI colour to paint it with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cell {
    /// The text.
    pub text: String,
    /// An SGR parameter such as `"32"` (green), or `None`.
    pub color: Option<&'static str>,
}

impl Cell {
    /// A plain cell.
    pub fn plain(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            color: None,
        }
    }

    /// A coloured cell.
    pub fn painted(text: impl Into<String>, color: Option<&'static str>) -> Self {
        Self {
            text: text.into(),
            color,
        }
    }
}

/// `headers` and `rows` as aligned lines, each ending with a newline; no trailing spaces.
pub fn render(headers: &[&str], rows: &[Vec<Cell>], color: bool) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.width()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let width = cell.text.width();
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(width),
                None => widths.push(width),
            }
        }
    }
    let header: Vec<Cell> = headers.iter().map(|h| Cell::plain(*h)).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            match (color, cell.color) {
                (true, Some(sgr)) => line.push_str(&format!("\x1b[{sgr}m{}\x1b[0m", cell.text)),
                _ => line.push_str(&cell.text),
            }
            let width = widths.get(i).copied().unwrap_or_default();
            let pad = width.saturating_sub(cell.text.width());
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_colour_does_not_shift_them() {
        let rows = vec![
            vec![
                Cell::plain("api"),
                Cell::painted("ready", Some("32")),
                Cell::plain("1"),
            ],
            vec![
                Cell::plain("worker-10"),
                Cell::plain("failed"),
                Cell::plain(""),
            ],
        ];
        assert_eq!(
            render(&["NAME", "STATE", "PID"], &rows, false),
            "NAME       STATE   PID\napi        ready   1\nworker-10  failed\n"
        );
        let painted = render(&["NAME", "STATE", "PID"], &rows, true);
        // Wide characters take two columns, combining marks none.
        let wide = vec![
            vec![Cell::plain("日本"), Cell::plain("x")],
            vec![Cell::plain("e\u{301}t\u{e9}"), Cell::plain("y")],
        ];
        assert_eq!(
            render(&["NAME", "S"], &wide, false),
            "NAME  S\n日本  x\ne\u{301}t\u{e9}   y\n"
        );
        assert!(painted.contains("\x1b[32mready\x1b[0m   1"), "{painted:?}");
    }
}
