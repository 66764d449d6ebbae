//! Children's output made safe for the screen: ANSI colours kept as styles (SGR only) or
//! stripped, and every other control sequence or control character removed, so a child
//! can never move the cursor, clear the screen or retitle the terminal through `top`.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

/// Whether colours written by children are shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AnsiMode {
    /// SGR colours and bold/dim/italic/underline become styles.
    #[default]
    Keep,
    /// Only the text is shown.
    Strip,
}

/// `text` without any escape sequence or control character (tabs become spaces).
pub fn strip(text: &str) -> String {
    spans(text).into_iter().map(|(_, text)| text).collect()
}

/// `text` as a styled line according to `mode`, on top of `base`.
pub fn line(text: &str, mode: AnsiMode, base: Style) -> Line<'static> {
    Line::from(
        spans(text)
            .into_iter()
            .map(|(style, text)| match mode {
                AnsiMode::Keep => Span::styled(text, base.patch(style)),
                AnsiMode::Strip => Span::styled(text, base),
            })
            .collect::<Vec<_>>(),
    )
}

/// Splits `text` into runs of printable text with the SGR style in force for each.
fn spans(text: &str) -> Vec<(Style, String)> {
    let mut out: Vec<(Style, String)> = Vec::new();
    let mut style = Style::default();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.peek() {
                Some('[') => {
                    chars.next();
                    let mut params = String::new();
                    let mut end = None;
                    for c in chars.by_ref() {
                        if ('\x40'..='\x7e').contains(&c) {
                            end = Some(c);
                            break;
                        }
                        params.push(c);
                    }
                    if end == Some('m') {
                        if !current.is_empty() {
                            out.push((style, std::mem::take(&mut current)));
                        }
                        style = sgr(style, &params);
                    }
                }
                Some(']') => {
                    // OSC: up to BEL or ST (ESC \).
                    chars.next();
                    while let Some(c) = chars.next() {
                        if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {
                    chars.next();
                }
            },
            '\t' => current.push_str("    "),
            c if c.is_control() => {}
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push((style, current));
    }
    out
}

/// The style after the SGR parameters `params` (`1;31`).
fn sgr(mut style: Style, params: &str) -> Style {
    let codes: Vec<u16> = params
        .split(';')
        .map(|code| code.parse().unwrap_or(0))
        .collect();
    let mut codes = codes.into_iter();
    while let Some(code) = codes.next() {
        style = match code {
            0 => Style::default(),
            1 => style.add_modifier(Modifier::BOLD),
            2 => style.add_modifier(Modifier::DIM),
            3 => style.add_modifier(Modifier::ITALIC),
            4 => style.add_modifier(Modifier::UNDERLINED),
            22 => style.remove_modifier(Modifier::BOLD | Modifier::DIM),
            23 => style.remove_modifier(Modifier::ITALIC),
            24 => style.remove_modifier(Modifier::UNDERLINED),
            30..=37 => style.fg(Color::Indexed((code - 30) as u8)),
            90..=97 => style.fg(Color::Indexed((code - 90 + 8) as u8)),
            40..=47 => style.bg(Color::Indexed((code - 40) as u8)),
            100..=107 => style.bg(Color::Indexed((code - 100 + 8) as u8)),
            39 => style.fg(Color::Reset),
            49 => style.bg(Color::Reset),
            38 | 48 => {
                let color = match codes.next() {
                    Some(5) => codes.next().map(|n| Color::Indexed(n.min(255) as u8)),
                    Some(2) => {
                        let mut rgb = [0u8; 3];
                        for part in &mut rgb {
                            *part = codes.next().unwrap_or(0).min(255) as u8;
                        }
                        Some(Color::Rgb(rgb[0], rgb[1], rgb[2]))
                    }
                    _ => None,
                };
                match (code, color) {
                    (38, Some(color)) => style.fg(color),
                    (48, Some(color)) => style.bg(color),
                    _ => style,
                }
            }
            _ => style,
        };
    }
    style
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_colours_and_drops_everything_else() {
        let hostile = "\x1b[31mred\x1b[0m \x1b[2J\x1b[Hplain\x1b]0;title\x07 \x08bell\x07\tend";
        assert_eq!(strip(hostile), "red plain bell    end");
        let styled = line(hostile, AnsiMode::Keep, Style::default());
        assert_eq!(styled.spans[0].content, "red");
        assert_eq!(styled.spans[0].style.fg, Some(Color::Indexed(1)));
        assert_eq!(styled.spans[1].style.fg, None);
        let stripped = line(hostile, AnsiMode::Strip, Style::default());
        assert!(stripped.spans.iter().all(|span| span.style.fg.is_none()));
        assert_eq!(strip("\x1b[38;5;200mx\x1b[38;2;1;2;3my"), "xy");
        assert_eq!(strip("cut \x1b["), "cut ");
    }
}
