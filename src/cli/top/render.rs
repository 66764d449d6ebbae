//! One frame of `herder top`: the summary line, the child table over the lower pane (logs,
//! events or errors), the status line, and whatever overlay is open (help, a confirmation,
//! a child's detail, the plan). In copy-friendly mode the focused pane fills the screen as
//! plain text without borders.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::app::{App, Link, Mode, Pane};
use super::input::KEYS;
use super::panes;
use crate::reconcile::VerbName;

/// Draws `app` on `frame`.
pub fn draw(frame: &mut Frame, app: &mut App) {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(Paragraph::new(summary(app)), header);
    if app.plain {
        let focus = if app.focus == Pane::Children {
            Pane::Children
        } else {
            app.lower
        };
        pane(frame, body, app, focus);
    } else {
        let [top, bottom] =
            Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(body);
        panes::children(frame, top, app);
        pane(frame, bottom, app, app.lower);
    }
    frame.render_widget(Paragraph::new(status_line(app)), footer);
    overlay(frame, app);
}

fn pane(frame: &mut Frame, area: Rect, app: &mut App, pane: Pane) {
    match pane {
        Pane::Children => panes::children(frame, area, app),
        Pane::Logs => panes::logs(frame, area, app),
        Pane::Events => panes::events(frame, area, app),
        Pane::Errors => panes::errors(frame, area, app),
    }
}

/// `herder top  SOCKET  gen 3  5 children: 4 ready, 1 failed  1 manifest error  connected`.
fn summary(app: &App) -> Line<'static> {
    let counts = app
        .counts()
        .into_iter()
        .map(|(state, n)| format!("{n} {state}"))
        .collect::<Vec<_>>()
        .join(", ");
    let errors = app.status.errors.len();
    let mut spans = vec![
        Span::styled("herder top", Style::default().add_modifier(Modifier::BOLD)),
        Span::raw(format!(
            "  {}  gen {}  {} children: {}  ",
            app.target,
            app.status.generation,
            app.status.children.len(),
            if counts.is_empty() { "none" } else { &counts }
        )),
    ];
    if errors > 0 {
        spans.push(Span::styled(
            format!(
                "{errors} manifest error{}  ",
                if errors == 1 { "" } else { "s" }
            ),
            Style::default().fg(Color::Red),
        ));
    }
    spans.push(match &app.link {
        Link::Connecting => Span::raw("connecting…"),
        Link::Connected => Span::styled("connected", Style::default().fg(Color::Green)),
        Link::Lost(why) => Span::styled(
            format!("disconnected, reconnecting: {why}"),
            Style::default().fg(Color::Red),
        ),
    });
    Line::from(spans)
}

fn status_line(app: &App) -> Line<'static> {
    match &app.mode {
        Mode::Filter => Line::raw(format!("filter: {}▏ (Enter keeps, Esc clears)", app.filter)),
        Mode::Search(text) => Line::raw(format!(
            "search ({}, {}): {text}▏ (Enter searches, Esc cancels)",
            if app.logs.search.regex {
                "regex"
            } else {
                "text"
            },
            if app.logs.search.ignore_case {
                "any case"
            } else {
                "case matters"
            },
        )),
        _ => match &app.flash {
            Some(flash) => Line::raw(flash.clone()),
            None => Line::styled(
                "? help  / filter  Tab pane  Enter detail  r restart  s stop  t start  p plan  q quit",
                Style::default().add_modifier(Modifier::DIM),
            ),
        },
    }
}

/// A centred area `percent_x` × `height` of `area`.
fn centred(area: Rect, percent_x: u16, height: u16) -> Rect {
    let width = area.width * percent_x / 100;
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

fn overlay(frame: &mut Frame, app: &App) {
    let area = frame.area();
    match &app.mode {
        Mode::Help => {
            let lines: Vec<Line> = KEYS
                .iter()
                .map(|(keys, what)| Line::raw(format!("{keys:<26} {what}")))
                .collect();
            let popup = centred(area, 80, lines.len() as u16 + 2);
            frame.render_widget(Clear, popup);
            frame.render_widget(
                Paragraph::new(Text::from(lines)).block(
                    Block::default()
                        .borders(Borders::ALL)
                        .title("keys (Esc closes)"),
                ),
                popup,
            );
        }
        Mode::Confirm(confirm) => {
            let who = if confirm.children.len() == 1 {
                confirm.children[0].clone()
            } else {
                format!("{} children", confirm.children.len())
            };
            let mut lines = vec![Line::raw(format!("{} {who}?", confirm.verb.as_str()))];
            if confirm.verb == VerbName::Signal {
                lines.push(Line::raw(format!(
                    "signal: {}{}",
                    confirm.signal,
                    if confirm.editing_signal { "▏" } else { "" }
                )));
            }
            lines.push(Line::raw(format!(
                "reason (optional): {}{}",
                confirm.reason,
                if confirm.editing_signal { "" } else { "▏" }
            )));
            lines.push(Line::styled(
                if confirm.verb == VerbName::Signal {
                    "Enter confirms, Tab switches field, Esc cancels"
                } else {
                    "Enter confirms, Esc cancels"
                },
                Style::default().add_modifier(Modifier::DIM),
            ));
            let popup = centred(area, 60, lines.len() as u16 + 2);
            frame.render_widget(Clear, popup);
            frame.render_widget(
                Paragraph::new(Text::from(lines))
                    .wrap(Wrap { trim: false })
                    .block(Block::default().borders(Borders::ALL).title("confirm")),
                popup,
            );
        }
        Mode::Overlay {
            title,
            lines,
            scroll,
        } => {
            let popup = centred(area, 90, area.height.saturating_sub(2));
            let text: Vec<Line> = lines
                .iter()
                .skip(*scroll)
                .map(|line| Line::raw(super::ansi::strip(line)))
                .collect();
            frame.render_widget(Clear, popup);
            frame.render_widget(
                Paragraph::new(Text::from(text))
                    .block(Block::default().borders(Borders::ALL).title(title.clone())),
                popup,
            );
        }
        Mode::Normal | Mode::Filter | Mode::Search(_) => {}
    }
}
