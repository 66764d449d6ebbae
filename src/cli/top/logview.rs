//! The log pane's state: a bounded buffer of lines, follow, scroll position, wrap, ANSI
//! mode and a search (regex or plain text, with or without case) with next/previous.

use std::collections::VecDeque;

use regex::{Regex, RegexBuilder};

use super::ansi::{self, AnsiMode};

/// Lines kept in the pane; older ones leave (they are in the child's log file).
pub const MAX_LINES: usize = 5_000;

/// One line of output, from one child.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// The child that wrote it.
    pub child: String,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The text as written (may hold ANSI sequences; made safe when drawn).
    pub text: String,
}

/// A search over the pane's lines.
#[derive(Clone, Debug, Default)]
pub struct Search {
    /// What was typed.
    pub pattern: String,
    /// Case matters unless set.
    pub ignore_case: bool,
    /// The pattern is a regex (else plain text).
    pub regex: bool,
    compiled: Option<Regex>,
    /// Why the pattern does not compile.
    pub error: Option<String>,
}

impl Search {
    /// A search for `pattern` with these options.
    pub fn new(pattern: &str, ignore_case: bool, regex: bool) -> Self {
        let mut search = Self {
            pattern: pattern.to_owned(),
            ignore_case,
            regex,
            ..Self::default()
        };
        search.compile();
        search
    }

    fn compile(&mut self) {
        self.compiled = None;
        self.error = None;
        if self.pattern.is_empty() {
            return;
        }
        let source = if self.regex {
            self.pattern.clone()
        } else {
            regex::escape(&self.pattern)
        };
        // Bounded: the regex crate's size limit refuses patterns that would grow too large.
        match RegexBuilder::new(&source)
            .case_insensitive(self.ignore_case)
            .size_limit(1 << 20)
            .build()
        {
            Ok(regex) => self.compiled = Some(regex),
            Err(error) => self.error = Some(error.to_string()),
        }
    }

    /// The byte ranges that match in `text`.
    pub fn matches(&self, text: &str) -> Vec<(usize, usize)> {
        self.compiled
            .as_ref()
            .map(|regex| {
                regex
                    .find_iter(text)
                    .map(|m| (m.start(), m.end()))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn is_match(&self, text: &str) -> bool {
        self.compiled
            .as_ref()
            .is_some_and(|regex| regex.is_match(text))
    }
}

/// The log pane.
#[derive(Clone, Debug)]
pub struct LogView {
    /// The lines, oldest first (at most [`MAX_LINES`]).
    pub lines: VecDeque<LogEntry>,
    /// Show the end as lines arrive.
    pub follow: bool,
    /// The first line shown when not following.
    pub top: usize,
    /// Wrap long lines.
    pub wrap: bool,
    /// Children's colours kept or stripped.
    pub ansi: AnsiMode,
    /// The search, if any.
    pub search: Search,
    /// The line of the current match.
    pub current: Option<usize>,
    /// Lines the pane shows at once (set when drawn).
    pub height: usize,
}

impl Default for LogView {
    fn default() -> Self {
        Self {
            lines: VecDeque::new(),
            follow: true,
            top: 0,
            wrap: false,
            ansi: AnsiMode::Keep,
            search: Search::default(),
            current: None,
            height: 10,
        }
    }
}

impl LogView {
    /// Appends a line, dropping the oldest beyond [`MAX_LINES`].
    pub fn push(&mut self, entry: LogEntry) {
        if self.lines.len() == MAX_LINES {
            self.lines.pop_front();
            self.top = self.top.saturating_sub(1);
            self.current = self.current.and_then(|line| line.checked_sub(1));
        }
        self.lines.push_back(entry);
    }

    /// Empties the pane (another source).
    pub fn clear(&mut self) {
        self.lines.clear();
        self.top = 0;
        self.current = None;
    }

    /// The first line shown.
    pub fn first_shown(&self) -> usize {
        if self.follow {
            self.lines.len().saturating_sub(self.height)
        } else {
            self.top.min(self.lines.len().saturating_sub(1))
        }
    }

    /// Scrolls by `delta` lines (negative: up); scrolling stops following.
    pub fn scroll(&mut self, delta: isize) {
        let first = self.first_shown();
        let last_top = self.lines.len().saturating_sub(self.height);
        self.top = first.saturating_add_signed(delta).min(last_top);
        self.follow = self.top >= last_top && delta > 0;
    }

    /// To the first line.
    pub fn to_top(&mut self) {
        self.follow = false;
        self.top = 0;
    }

    /// To the end, following again.
    pub fn to_bottom(&mut self) {
        self.follow = true;
    }

    /// Moves to the next (`forward`) or previous match from the current one and shows it.
    pub fn find(&mut self, forward: bool) {
        let len = self.lines.len();
        if len == 0 {
            return;
        }
        let start = self.current.unwrap_or_else(|| {
            if forward {
                self.first_shown().wrapping_sub(1)
            } else {
                self.first_shown() + self.height.min(len)
            }
        });
        for step in 1..=len {
            let line = if forward {
                (start.wrapping_add(step)) % len
            } else {
                (start + len * 2 - step) % len
            };
            if self.search.is_match(&ansi::strip(&self.lines[line].text)) {
                self.current = Some(line);
                self.follow = false;
                self.top = line.saturating_sub(self.height / 2);
                return;
            }
        }
        self.current = None;
    }
}

/// A bounded list of lines with a scroll position (the events pane).
#[derive(Clone, Debug, Default)]
pub struct Scrolled<T> {
    /// Oldest first.
    pub items: VecDeque<T>,
    /// Lines up from the end (0: the newest are shown).
    pub back: usize,
}

impl<T> Scrolled<T> {
    /// Appends, keeping at most `bound` items.
    pub fn push(&mut self, item: T, bound: usize) {
        if self.items.len() == bound {
            self.items.pop_front();
        }
        self.items.push_back(item);
        if self.back > 0 {
            self.back = (self.back + 1).min(self.items.len());
        }
    }

    /// Scrolls by `delta` (negative: towards older items).
    pub fn scroll(&mut self, delta: isize) {
        self.back = self
            .back
            .saturating_add_signed(-delta)
            .min(self.items.len().saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(lines: &[&str]) -> LogView {
        let mut view = LogView {
            height: 2,
            ..LogView::default()
        };
        for text in lines {
            view.push(LogEntry {
                child: "web".into(),
                stream: "stdout".into(),
                text: (*text).into(),
            });
        }
        view
    }

    #[test]
    fn search_moves_between_matches_with_case_and_regex_options() {
        let mut view = view(&["Error one", "fine", "error two", "fine", "ERROR three"]);
        view.search = Search::new("error", false, false);
        view.find(true);
        assert_eq!(view.current, Some(2));
        view.find(true);
        assert_eq!(view.current, Some(2), "only one case-sensitive match");
        view.search = Search::new("e.r+or", true, true);
        view.current = None;
        view.to_top();
        view.find(true);
        assert_eq!(view.current, Some(0));
        view.find(true);
        assert_eq!(view.current, Some(2));
        view.find(false);
        assert_eq!(view.current, Some(0));
        view.find(false);
        assert_eq!(view.current, Some(4), "wraps around");
        assert!(!view.follow);
        assert!(Search::new("(", false, true).error.is_some());
        assert_eq!(Search::new("(", false, false).matches("a(b"), [(1, 2)]);
    }

    #[test]
    fn scrolling_up_stops_following_and_the_bound_holds() {
        let mut view = view(&["a", "b", "c", "d"]);
        assert_eq!(view.first_shown(), 2);
        view.scroll(-1);
        assert!(!view.follow);
        assert_eq!(view.first_shown(), 1);
        view.scroll(5);
        assert!(view.follow);
        for n in 0..MAX_LINES {
            view.push(LogEntry {
                child: "x".into(),
                stream: "stdout".into(),
                text: n.to_string(),
            });
        }
        assert_eq!(view.lines.len(), MAX_LINES);
    }
}
