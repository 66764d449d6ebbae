//! `herder top`'s state and how keys and server updates change it. Synchronous and free of
//! I/O: keys become [`Effect`]s the connection carries out, and what the server says
//! arrives as [`Update`]s, so the whole behaviour is testable without a terminal or a
//! server.

use std::collections::BTreeSet;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::widgets::TableState;
use serde_json::Value;

use super::ansi::AnsiMode;
use super::input::{Intent, intent};
use super::logview::{LogEntry, LogView, Scrolled, Search};
use super::model::{EventLine, Status};
use super::rows::{self, SortKey};
use crate::reconcile::VerbName;

/// Events kept in the events pane.
pub const MAX_EVENTS: usize = 2_000;

/// Children whose logs the merged view follows at most (one stream each).
pub const MAX_MERGED: usize = 50;

/// Whether `verb` interrupts a running process, so `top` asks first.
pub fn destructive(verb: VerbName) -> bool {
    matches!(
        verb,
        VerbName::Restart
            | VerbName::Stop
            | VerbName::Pause
            | VerbName::Quarantine
            | VerbName::Signal
    )
}

/// The panes Tab moves between.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pane {
    /// The child table.
    #[default]
    Children,
    /// Captured output.
    Logs,
    /// The event log.
    Events,
    /// Manifest errors in force.
    Errors,
}

/// Which log the log pane follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogSource {
    /// Nothing to follow (no child).
    None,
    /// One child's output.
    Child(String),
    /// These children's output, merged with name prefixes.
    Merged(Vec<String>),
}

/// A confirmation being answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirm {
    /// What to do.
    pub verb: VerbName,
    /// To whom.
    pub children: Vec<String>,
    /// The reason typed (optional).
    pub reason: String,
    /// The signal typed (for `signal`).
    pub signal: String,
    /// Typing goes to the signal field (else the reason).
    pub editing_signal: bool,
}

/// What the keyboard is doing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Moving and acting.
    #[default]
    Normal,
    /// Typing the table filter.
    Filter,
    /// Typing a log search.
    Search(String),
    /// Answering a confirmation.
    Confirm(Confirm),
    /// The key list.
    Help,
    /// A text shown over everything (detail, plan), with its title and scroll.
    Overlay {
        /// Title.
        title: String,
        /// Lines.
        lines: Vec<String>,
        /// First line shown.
        scroll: usize,
    },
}

/// Whether the instance is reachable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Link {
    /// Not yet known.
    #[default]
    Connecting,
    /// Streams are open.
    Connected,
    /// Lost; reconnecting.
    Lost(String),
}

/// What the connection reports.
#[derive(Clone, Debug)]
pub enum Update {
    /// The instance answers again.
    Connected,
    /// The instance stopped answering.
    Lost(String),
    /// A fresh status report.
    Status(Status),
    /// One event.
    Event(EventLine),
    /// One log line of the current source.
    Log(LogEntry),
    /// The log source changed: start over.
    LogReset,
    /// A child's detail (`GET /v1/children/{name}`).
    Detail(String, Value),
    /// The plan of the watched directory, as text.
    Plan(String),
    /// The outcome of a command, for the status line.
    Outcome(String),
}

/// What the app asks the connection to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Leave.
    Quit,
    /// Send a command.
    Command {
        /// The verb.
        verb: VerbName,
        /// The children.
        children: Vec<String>,
        /// `--reason`.
        reason: Option<String>,
        /// For `signal`.
        signal: Option<String>,
    },
    /// Fetch a child's detail.
    Detail(String),
    /// Fetch the plan.
    Plan,
}

/// Everything `top` shows.
#[derive(Debug, Default)]
pub struct App {
    /// The instance (its socket), for the title.
    pub target: String,
    /// The last status report.
    pub status: Status,
    /// Reachability.
    pub link: Link,
    /// Indices into `status.children`, filtered and sorted.
    pub view: Vec<usize>,
    /// The table's selection and scroll.
    pub table: TableState,
    /// Marked children (actions apply to them).
    pub marked: BTreeSet<String>,
    /// Sort column.
    pub sort: SortKey,
    /// Reverse the sort.
    pub reverse: bool,
    /// The table filter.
    pub filter: String,
    /// The focused pane.
    pub focus: Pane,
    /// Which pane the lower half shows (logs, events or errors).
    pub lower: Pane,
    /// The log pane.
    pub logs: LogView,
    /// All children merged (else the selected one).
    pub merged: bool,
    /// The events pane.
    pub events: Scrolled<EventLine>,
    /// The errors pane's scroll.
    pub errors_scroll: usize,
    /// Plain text without borders.
    pub plain: bool,
    /// What the keyboard does.
    pub mode: Mode,
    /// A message for the status line.
    pub flash: Option<String>,
    /// Time since the status was fetched.
    pub age: Duration,
    /// Rows the table shows at once (set when drawn).
    pub table_height: usize,
}

impl App {
    /// An app for the instance `target`.
    pub fn new(target: String) -> Self {
        Self {
            target,
            lower: Pane::Logs,
            table_height: 10,
            ..Self::default()
        }
    }

    /// Applies what the server said.
    pub fn update(&mut self, update: Update) {
        match update {
            Update::Connected => self.link = Link::Connected,
            Update::Lost(why) => self.link = Link::Lost(why),
            Update::Status(status) => {
                let selected = self.selected_name();
                self.status = status;
                self.age = Duration::ZERO;
                self.refresh_view(selected);
            }
            Update::Event(event) => self.events.push(event, MAX_EVENTS),
            Update::Log(entry) => self.logs.push(entry),
            Update::LogReset => self.logs.clear(),
            Update::Detail(name, detail) => {
                self.mode = Mode::Overlay {
                    title: format!("{name} in detail (Esc closes)"),
                    lines: super::detail::lines(&detail, &self.status),
                    scroll: 0,
                };
            }
            Update::Plan(text) => {
                self.mode = Mode::Overlay {
                    title: "plan of the manifest directory (Esc closes)".to_owned(),
                    lines: text.lines().map(str::to_owned).collect(),
                    scroll: 0,
                };
            }
            Update::Outcome(text) => self.flash = Some(text),
        }
    }

    /// Time passes (uptimes go on).
    pub fn tick(&mut self, elapsed: Duration) {
        self.age += elapsed;
    }

    /// The selected child's name.
    pub fn selected_name(&self) -> Option<String> {
        let index = *self.view.get(self.table.selected()?)?;
        Some(self.status.children.get(index)?.name.clone())
    }

    /// The log the pane should follow now.
    pub fn log_source(&self) -> LogSource {
        if self.merged {
            let names: Vec<String> = self
                .view
                .iter()
                .take(MAX_MERGED)
                .map(|&i| self.status.children[i].name.clone())
                .collect();
            if names.is_empty() {
                LogSource::None
            } else {
                LogSource::Merged(names)
            }
        } else {
            self.selected_name()
                .map_or(LogSource::None, LogSource::Child)
        }
    }

    /// Recomputes the filtered, sorted rows, keeping `selected` selected if it is there.
    fn refresh_view(&mut self, selected: Option<String>) {
        let children = &self.status.children;
        let mut view: Vec<usize> = (0..children.len())
            .filter(|&i| rows::matches(&children[i], &self.filter))
            .collect();
        view.sort_by(|&a, &b| {
            let order = rows::compare(&children[a], &children[b], self.sort);
            if self.reverse { order.reverse() } else { order }
        });
        let position = selected
            .and_then(|name| view.iter().position(|&i| children[i].name == name))
            .or_else(|| (!view.is_empty()).then_some(0));
        let position = position.map(|p| p.min(view.len().saturating_sub(1)));
        self.view = view;
        self.table
            .select(position.filter(|_| !self.view.is_empty()));
    }

    /// Handles a key; returns what the connection must do.
    pub fn key(&mut self, key: KeyEvent) -> Vec<Effect> {
        self.flash = None;
        match std::mem::take(&mut self.mode) {
            Mode::Normal => self.normal(key),
            Mode::Filter => {
                self.mode = Mode::Filter;
                match key.code {
                    KeyCode::Esc => {
                        self.filter.clear();
                        self.mode = Mode::Normal;
                    }
                    KeyCode::Enter => self.mode = Mode::Normal,
                    KeyCode::Backspace => {
                        self.filter.pop();
                    }
                    KeyCode::Char(c) => self.filter.push(c),
                    _ => {}
                }
                self.refresh_view(self.selected_name());
                Vec::new()
            }
            Mode::Search(mut text) => {
                match key.code {
                    KeyCode::Esc => {}
                    KeyCode::Enter => {
                        let search = &self.logs.search;
                        self.logs.search = Search::new(&text, search.ignore_case, search.regex);
                        self.logs.current = None;
                        self.logs.find(false);
                    }
                    KeyCode::Backspace => {
                        text.pop();
                        self.mode = Mode::Search(text);
                    }
                    KeyCode::Char(c) => {
                        text.push(c);
                        self.mode = Mode::Search(text);
                    }
                    _ => self.mode = Mode::Search(text),
                }
                Vec::new()
            }
            Mode::Confirm(mut confirm) => match key.code {
                KeyCode::Esc => {
                    self.flash = Some(format!("{} cancelled", confirm.verb.as_str()));
                    Vec::new()
                }
                KeyCode::Enter => {
                    let reason = confirm.reason.trim();
                    let signal = confirm.signal.trim();
                    vec![Effect::Command {
                        verb: confirm.verb,
                        children: confirm.children,
                        reason: (!reason.is_empty()).then(|| reason.to_owned()),
                        signal: (confirm.verb == VerbName::Signal).then(|| signal.to_owned()),
                    }]
                }
                code => {
                    let field = if confirm.editing_signal {
                        &mut confirm.signal
                    } else {
                        &mut confirm.reason
                    };
                    match code {
                        KeyCode::Tab if confirm.verb == VerbName::Signal => {
                            confirm.editing_signal = !confirm.editing_signal;
                        }
                        KeyCode::Backspace => {
                            field.pop();
                        }
                        // Bounded as the API bounds a reason.
                        KeyCode::Char(c) if field.len() < 1024 => field.push(c),
                        _ => {}
                    }
                    self.mode = Mode::Confirm(confirm);
                    Vec::new()
                }
            },
            Mode::Help => {
                if !matches!(key.code, KeyCode::Esc | KeyCode::Char('q' | '?')) {
                    self.mode = Mode::Help;
                }
                Vec::new()
            }
            Mode::Overlay {
                title,
                lines,
                mut scroll,
            } => {
                match intent(key) {
                    Some(Intent::Quit) => return Vec::new(),
                    Some(Intent::Up) => scroll = scroll.saturating_sub(1),
                    Some(Intent::Down) => scroll = (scroll + 1).min(lines.len().saturating_sub(1)),
                    Some(Intent::PageUp) => scroll = scroll.saturating_sub(10),
                    Some(Intent::PageDown) => {
                        scroll = (scroll + 10).min(lines.len().saturating_sub(1));
                    }
                    _ if key.code == KeyCode::Esc => return Vec::new(),
                    _ => {}
                }
                self.mode = Mode::Overlay {
                    title,
                    lines,
                    scroll,
                };
                Vec::new()
            }
        }
    }

    fn normal(&mut self, key: KeyEvent) -> Vec<Effect> {
        let Some(intent) = intent(key) else {
            return Vec::new();
        };
        match intent {
            Intent::Quit => return vec![Effect::Quit],
            Intent::Help => self.mode = Mode::Help,
            Intent::NextPane | Intent::PreviousPane => {
                const ORDER: [Pane; 4] = [Pane::Children, Pane::Logs, Pane::Events, Pane::Errors];
                let at = ORDER.iter().position(|p| *p == self.focus).unwrap_or(0);
                let step = if intent == Intent::NextPane { 1 } else { 3 };
                self.focus = ORDER[(at + step) % 4];
                if self.focus != Pane::Children {
                    self.lower = self.focus;
                }
            }
            Intent::Up => self.scroll(-1),
            Intent::Down => self.scroll(1),
            Intent::PageUp => self.scroll(-(self.page() as isize)),
            Intent::PageDown => self.scroll(self.page() as isize),
            Intent::Top => self.scroll(isize::MIN / 2),
            Intent::Bottom => {
                self.scroll(isize::MAX / 2);
                if self.focus == Pane::Logs {
                    self.logs.to_bottom();
                }
            }
            Intent::Find if self.focus == Pane::Logs => {
                self.mode = Mode::Search(self.logs.search.pattern.clone());
            }
            Intent::Find => {
                self.focus = Pane::Children;
                self.mode = Mode::Filter;
            }
            Intent::NextMatch => self.logs.find(true),
            Intent::PreviousMatch => self.logs.find(false),
            Intent::ToggleCase | Intent::ToggleRegex => {
                let search = &self.logs.search;
                let (case, regex) = if intent == Intent::ToggleCase {
                    (!search.ignore_case, search.regex)
                } else {
                    (search.ignore_case, !search.regex)
                };
                self.logs.search = Search::new(&search.pattern, case, regex);
                self.flash = Some(format!(
                    "search: {}, {}",
                    if case {
                        "ignoring case"
                    } else {
                        "case matters"
                    },
                    if regex { "regex" } else { "plain text" }
                ));
            }
            Intent::ToggleFollow => {
                self.logs.follow = !self.logs.follow;
                if !self.logs.follow {
                    self.logs.top = self.logs.lines.len().saturating_sub(self.logs.height);
                }
            }
            Intent::ToggleWrap => self.logs.wrap = !self.logs.wrap,
            Intent::TogglePlain => self.plain = !self.plain,
            Intent::ToggleAnsi => {
                self.logs.ansi = match self.logs.ansi {
                    AnsiMode::Keep => AnsiMode::Strip,
                    AnsiMode::Strip => AnsiMode::Keep,
                };
            }
            Intent::ToggleMerged => self.merged = !self.merged,
            Intent::Sort | Intent::ReverseSort => {
                if intent == Intent::Sort {
                    self.sort = self.sort.next();
                } else {
                    self.reverse = !self.reverse;
                }
                self.refresh_view(self.selected_name());
            }
            Intent::Mark => {
                if let Some(name) = self.selected_name()
                    && !self.marked.remove(&name)
                {
                    self.marked.insert(name);
                }
                self.scroll(1);
            }
            Intent::Detail => {
                if let Some(name) = self.selected_name() {
                    return vec![Effect::Detail(name)];
                }
            }
            Intent::Plan => return vec![Effect::Plan],
            Intent::Act(verb) => return self.act(verb),
        }
        Vec::new()
    }

    /// A command on the marked children, else on the selected one: at once, or after a
    /// confirmation for the destructive ones.
    fn act(&mut self, verb: VerbName) -> Vec<Effect> {
        let children: Vec<String> = if self.marked.is_empty() {
            self.selected_name().into_iter().collect()
        } else {
            self.marked.iter().cloned().collect()
        };
        if children.is_empty() {
            self.flash = Some("no child selected".to_owned());
            return Vec::new();
        }
        if destructive(verb) {
            self.mode = Mode::Confirm(Confirm {
                verb,
                children,
                reason: String::new(),
                signal: if verb == VerbName::Signal {
                    "SIGHUP".to_owned()
                } else {
                    String::new()
                },
                editing_signal: verb == VerbName::Signal,
            });
            return Vec::new();
        }
        vec![Effect::Command {
            verb,
            children,
            reason: None,
            signal: None,
        }]
    }

    fn page(&self) -> usize {
        match self.focus {
            Pane::Children => self.table_height.max(1),
            _ => self.logs.height.max(1),
        }
    }

    /// Moves the focused pane by `delta` lines.
    pub fn scroll(&mut self, delta: isize) {
        match self.focus {
            Pane::Children => {
                if self.view.is_empty() {
                    return;
                }
                let at = self.table.selected().unwrap_or(0);
                let to = at.saturating_add_signed(delta).min(self.view.len() - 1);
                self.table.select(Some(to));
            }
            Pane::Logs => self.logs.scroll(delta),
            Pane::Events => self.events.scroll(delta),
            Pane::Errors => {
                self.errors_scroll = self
                    .errors_scroll
                    .saturating_add_signed(delta)
                    .min(self.status.errors.len().saturating_sub(1));
            }
        }
    }

    /// Children by state, for the summary line: `("ready", 3)`, in state order.
    pub fn counts(&self) -> Vec<(String, usize)> {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for child in &self.status.children {
            match counts.iter_mut().find(|(state, _)| *state == child.state) {
                Some((_, n)) => *n += 1,
                None => counts.push((child.state.clone(), 1)),
            }
        }
        counts.sort();
        counts
    }
}
