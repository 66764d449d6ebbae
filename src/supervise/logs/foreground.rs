//! The `docker compose up`-style stream: `name | line`, one colour per child.
//!
//! Colour is used only when standard output is a terminal and `NO_COLOR` is unset (<https://no-color.org>).

use std::io::{IsTerminal, Write};

const PALETTE: [&str; 6] = [
    "\x1b[36m", "\x1b[33m", "\x1b[32m", "\x1b[35m", "\x1b[34m", "\x1b[96m",
];
const RESET: &str = "\x1b[0m";

/// Prints child output to herder's standard output.
#[derive(Debug, Clone)]
pub struct ForegroundSink {
    color: bool,
    width: usize,
}

impl ForegroundSink {
    /// A sink that decides on colour from the environment and the terminal.
    pub fn detect() -> Self {
        let color = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Self { color, width: 0 }
    }

    /// A sink with colour forced on or off.
    pub fn with_color(color: bool) -> Self {
        Self { color, width: 0 }
    }

    /// Pads names to `width` columns so the separators line up.
    pub fn with_name_width(mut self, width: usize) -> Self {
        self.width = width;
        self
    }

    /// Formats one line as it is printed (without the newline).
    pub fn format(&self, name: &str, line: &str) -> String {
        if self.color {
            let colour = PALETTE[name
                .bytes()
                .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b.into()))
                % PALETTE.len()];
            format!("{colour}{name:<w$} |{RESET} {line}", w = self.width)
        } else {
            format!("{name:<w$} | {line}", w = self.width)
        }
    }

    /// Prints a batch of lines of one child.
    pub fn print<'a>(&self, name: &str, lines: impl Iterator<Item = &'a str>) {
        let mut out = std::io::stdout().lock();
        for line in lines {
            // A closed stdout (herder piped into `head`) must not stop supervision.
            let _ = writeln!(out, "{}", self.format(name, line));
        }
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_coloured() {
        assert_eq!(
            ForegroundSink::with_color(false)
                .with_name_width(5)
                .format("api", "hi"),
            "api   | hi"
        );
        let c = ForegroundSink::with_color(true).format("api", "hi");
        assert!(
            c.starts_with("\x1b[") && c.ends_with("api |\x1b[0m hi"),
            "{c:?}"
        );
    }
}
