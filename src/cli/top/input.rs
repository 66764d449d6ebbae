//! Keys and the mouse, mapped to what they mean in `herder top`. The table of keys here
//! is also what `?` shows, so help cannot drift from the bindings.
//!
//! Conventions of the field: arrows and vim keys to move, `/` to filter or search, `n`/`N`
//! for the next and previous match, `Tab` between panes, `Esc` to cancel, `q` to quit.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers, MouseEvent, MouseEventKind};

use crate::reconcile::VerbName;

/// What a key asks for, in the normal mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    /// Leave `top`.
    Quit,
    /// Show every key.
    Help,
    /// Focus the next pane.
    NextPane,
    /// Focus the previous pane.
    PreviousPane,
    /// One line (row) up.
    Up,
    /// One line (row) down.
    Down,
    /// A page up.
    PageUp,
    /// A page down.
    PageDown,
    /// To the first line.
    Top,
    /// To the last line (and follow, in the log pane).
    Bottom,
    /// Type a filter (table) or a search (logs).
    Find,
    /// The next search match.
    NextMatch,
    /// The previous search match.
    PreviousMatch,
    /// Search with or without case.
    ToggleCase,
    /// Search by regex or by plain text.
    ToggleRegex,
    /// Follow the log's end, or stop.
    ToggleFollow,
    /// Wrap long lines, or cut them.
    ToggleWrap,
    /// Plain text without borders, for copying with the terminal's selection.
    TogglePlain,
    /// Keep or strip the children's ANSI colours.
    ToggleAnsi,
    /// The selected child's log, or every child's merged.
    ToggleMerged,
    /// Sort by the next column.
    Sort,
    /// Reverse the sort.
    ReverseSort,
    /// Mark or unmark the selected child (actions apply to the marked ones).
    Mark,
    /// The selected child in detail.
    Detail,
    /// What applying the manifest directory would do (`herder plan`).
    Plan,
    /// A command on the selected (or marked) children.
    Act(VerbName),
}

/// Every key, with what it does: the help screen.
pub const KEYS: &[(&str, &str)] = &[
    ("q, Ctrl-C", "quit"),
    ("?", "this help (Esc closes)"),
    (
        "Tab, Shift-Tab",
        "next / previous pane: children, logs, events, errors",
    ),
    ("↑ ↓, k j", "move the selection / scroll one line"),
    ("PgUp PgDn, Ctrl-B Ctrl-F", "a page up / down"),
    (
        "g G, Home End",
        "first / last line (G follows the log again)",
    ),
    ("mouse wheel", "scroll the pane under the pointer"),
    (
        "/",
        "filter children (name, label:KEY=VALUE, state:STATE) or search the log",
    ),
    ("n N", "next / previous search match"),
    ("i", "search: ignore case on / off"),
    ("x", "search: regex on / off"),
    ("f", "follow the log on / off"),
    ("w", "wrap long lines on / off"),
    ("c", "copy-friendly: plain text, no borders"),
    ("a", "keep / strip the children's ANSI colours"),
    ("m", "log of the selected child / all children merged"),
    ("o O", "sort by the next column / reverse"),
    (
        "space",
        "mark / unmark a child (actions apply to the marked)",
    ),
    ("Enter", "the selected child in detail"),
    ("p", "plan: what applying the manifest directory would do"),
    ("r", "restart (asks first)"),
    ("s", "stop (asks first)"),
    ("t", "start"),
    ("z", "pause (asks first)"),
    ("u", "resume"),
    ("Q", "quarantine (asks first)"),
    ("R", "release"),
    ("K", "send a signal (asks first)"),
];

/// The intent of `key` in the normal mode, if it has one.
pub fn intent(key: KeyEvent) -> Option<Intent> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    Some(match key.code {
        KeyCode::Char('c') if ctrl => Intent::Quit,
        KeyCode::Char('b') if ctrl => Intent::PageUp,
        KeyCode::Char('f') if ctrl => Intent::PageDown,
        KeyCode::Char('q') => Intent::Quit,
        KeyCode::Char('?') | KeyCode::F(1) => Intent::Help,
        KeyCode::Tab => Intent::NextPane,
        KeyCode::BackTab => Intent::PreviousPane,
        KeyCode::Up | KeyCode::Char('k') => Intent::Up,
        KeyCode::Down | KeyCode::Char('j') => Intent::Down,
        KeyCode::PageUp => Intent::PageUp,
        KeyCode::PageDown => Intent::PageDown,
        KeyCode::Home | KeyCode::Char('g') => Intent::Top,
        KeyCode::End | KeyCode::Char('G') => Intent::Bottom,
        KeyCode::Char('/') => Intent::Find,
        KeyCode::Char('n') => Intent::NextMatch,
        KeyCode::Char('N') => Intent::PreviousMatch,
        KeyCode::Char('i') => Intent::ToggleCase,
        KeyCode::Char('x') => Intent::ToggleRegex,
        KeyCode::Char('f') => Intent::ToggleFollow,
        KeyCode::Char('w') => Intent::ToggleWrap,
        KeyCode::Char('c') => Intent::TogglePlain,
        KeyCode::Char('a') => Intent::ToggleAnsi,
        KeyCode::Char('m') => Intent::ToggleMerged,
        KeyCode::Char('o') => Intent::Sort,
        KeyCode::Char('O') => Intent::ReverseSort,
        KeyCode::Char(' ') => Intent::Mark,
        KeyCode::Enter => Intent::Detail,
        KeyCode::Char('p') => Intent::Plan,
        KeyCode::Char('r') => Intent::Act(VerbName::Restart),
        KeyCode::Char('s') => Intent::Act(VerbName::Stop),
        KeyCode::Char('t') => Intent::Act(VerbName::Start),
        KeyCode::Char('z') => Intent::Act(VerbName::Pause),
        KeyCode::Char('u') => Intent::Act(VerbName::Resume),
        KeyCode::Char('Q') => Intent::Act(VerbName::Quarantine),
        KeyCode::Char('R') => Intent::Act(VerbName::Release),
        KeyCode::Char('K') => Intent::Act(VerbName::Signal),
        _ => return None,
    })
}

/// The wheel as scrolling: `Some(true)` up, `Some(false)` down.
pub fn wheel(mouse: MouseEvent) -> Option<bool> {
    match mouse.kind {
        MouseEventKind::ScrollUp => Some(true),
        MouseEventKind::ScrollDown => Some(false),
        _ => None,
    }
}
