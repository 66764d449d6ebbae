//! The panes of `herder top`: the child table, the log pane, the events pane and the
//! manifest-errors pane. Each draws from the [`App`] alone.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, TableState, Wrap};
use unicode_width::UnicodeWidthStr;

use super::ansi;
use super::app::{App, Pane};
use super::rows::{self, HEADERS};

/// A pane's frame: a titled border, or nothing in copy-friendly mode.
fn block(app: &App, pane: Pane, title: String) -> Block<'static> {
    if app.plain {
        return Block::default();
    }
    let style = if app.focus == pane {
        Style::default().add_modifier(Modifier::BOLD)
    } else {
        Style::default().add_modifier(Modifier::DIM)
    };
    Block::default()
        .borders(Borders::ALL)
        .border_style(style)
        .title(Span::styled(title, style))
}

/// The colour of a state.
pub fn state_color(state: &str) -> Color {
    match state {
        "ready" | "completed" => Color::Green,
        "running" | "starting" | "spawning" => Color::Cyan,
        "failed" | "unhealthy" => Color::Red,
        "backoff" | "stopping" | "waiting" | "paused" => Color::Yellow,
        "quarantined" => Color::Magenta,
        _ => Color::Gray,
    }
}

/// The child table.
pub fn children(frame: &mut Frame, area: Rect, app: &mut App) {
    let sort = format!(
        "children {}/{} sorted by {}{}{}",
        app.view.len(),
        app.status.children.len(),
        app.sort.header(),
        if app.reverse { " (reversed)" } else { "" },
        if app.filter.is_empty() {
            String::new()
        } else {
            format!(" filter: {}", app.filter)
        }
    );
    let block = block(app, Pane::Children, sort);
    let inner = block.inner(area);
    // The header row takes one line.
    app.table_height = usize::from(inner.height.saturating_sub(1));
    let name_width = app
        .view
        .iter()
        .map(|&i| app.status.children[i].name.width() + 2)
        .max()
        .unwrap_or(4)
        .clamp(6, 32) as u16;
    let widths = [
        Constraint::Length(name_width),
        Constraint::Length(11),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(16),
        Constraint::Fill(1),
    ];
    let header = Row::new(HEADERS.map(|h| {
        if h == app.sort.header() {
            Span::styled(h, Style::default().add_modifier(Modifier::UNDERLINED))
        } else {
            Span::raw(h)
        }
    }))
    .style(Style::default().add_modifier(Modifier::BOLD));
    let color = !app.plain;
    // Only the rows on screen are built: with 1,000 children a frame costs a screenful.
    let height = app.table_height.max(1);
    let selected = app.table.selected().unwrap_or(0);
    let mut offset = app.table.offset().min(app.view.len().saturating_sub(1));
    if selected < offset {
        offset = selected;
    } else if selected >= offset + height {
        offset = selected + 1 - height;
    }
    *app.table.offset_mut() = offset;
    let body = app.view.iter().skip(offset).take(height).map(|&i| {
        let row = &app.status.children[i];
        let mut cells = rows::cells(row, app.age);
        if app.marked.contains(&row.name) {
            cells[0] = format!("*{}", cells[0]);
        }
        let state_style = if color {
            Style::default().fg(state_color(&row.state))
        } else {
            Style::default()
        };
        Row::new(cells.into_iter().enumerate().map(|(n, cell)| {
            if n == 1 {
                Span::styled(cell, state_style)
            } else {
                Span::raw(cell)
            }
        }))
    });
    let table = Table::new(body, widths)
        .header(header)
        .block(block)
        .column_spacing(1)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
        .highlight_symbol("> ")
        .highlight_spacing(ratatui::widgets::HighlightSpacing::Always);
    let mut window = TableState::default().with_selected(app.table.selected().map(|s| s - offset));
    frame.render_stateful_widget(table, area, &mut window);
}

/// The log pane.
pub fn logs(frame: &mut Frame, area: Rect, app: &mut App) {
    let source = if app.merged {
        "all children".to_owned()
    } else {
        app.selected_name().unwrap_or_else(|| "-".to_owned())
    };
    let view = &app.logs;
    let mut flags = vec![if view.follow { "follow" } else { "paused" }];
    if view.wrap {
        flags.push("wrap");
    }
    flags.push(match view.ansi {
        ansi::AnsiMode::Keep => "colours",
        ansi::AnsiMode::Strip => "no colours",
    });
    let mut title = format!("logs: {source} ({})", flags.join(", "));
    if !view.search.pattern.is_empty() {
        title.push_str(&format!(
            " search {}{}{}",
            if view.search.regex { "/" } else { "\"" },
            view.search.pattern,
            match (view.search.regex, view.search.ignore_case) {
                (true, true) => "/i",
                (true, false) => "/",
                (false, true) => "\" i",
                (false, false) => "\"",
            }
        ));
        if let Some(error) = &view.search.error {
            title.push_str(&format!(" ({})", error.lines().last().unwrap_or("invalid")));
        }
    }
    let block = block(app, Pane::Logs, title);
    let inner = block.inner(area);
    app.logs.height = usize::from(inner.height).max(1);
    let view = &app.logs;
    let first = view.first_shown();
    let prefix_width = if app.merged {
        view.lines.iter().map(|e| e.child.len()).max().unwrap_or(0)
    } else {
        0
    };
    let lines: Vec<Line> = view
        .lines
        .iter()
        .enumerate()
        .skip(first)
        .take(view.height)
        .map(|(n, entry)| {
            let base = if entry.stream == "stderr" && !app.plain {
                Style::default().fg(Color::LightRed)
            } else {
                Style::default()
            };
            let mut line = if view.search.pattern.is_empty() {
                ansi::line(&entry.text, view.ansi, base)
            } else {
                highlighted(
                    &ansi::strip(&entry.text),
                    &view.search,
                    base,
                    view.current == Some(n),
                )
            };
            if app.merged {
                line.spans.insert(
                    0,
                    Span::styled(
                        format!("{:<prefix_width$} | ", entry.child),
                        Style::default().add_modifier(Modifier::DIM),
                    ),
                );
            }
            line
        })
        .collect();
    let mut paragraph = Paragraph::new(Text::from(lines)).block(block);
    if view.wrap {
        paragraph = paragraph.wrap(Wrap { trim: false });
    }
    frame.render_widget(paragraph, area);
}

/// `text` with the search's matches reversed (the current match's line in bold).
fn highlighted(
    text: &str,
    search: &super::logview::Search,
    base: Style,
    current: bool,
) -> Line<'static> {
    let base = if current {
        base.add_modifier(Modifier::BOLD)
    } else {
        base
    };
    let mut spans = Vec::new();
    let mut at = 0;
    for (start, end) in search.matches(text) {
        if start > at {
            spans.push(Span::styled(text[at..start].to_owned(), base));
        }
        spans.push(Span::styled(
            text[start..end].to_owned(),
            base.add_modifier(Modifier::REVERSED),
        ));
        at = end;
    }
    if at < text.len() {
        spans.push(Span::styled(text[at..].to_owned(), base));
    }
    Line::from(spans)
}

/// The events pane: newest at the bottom.
pub fn events(frame: &mut Frame, area: Rect, app: &App) {
    let block = block(
        app,
        Pane::Events,
        format!("events ({})", app.events.items.len()),
    );
    let height = usize::from(block.inner(area).height);
    let items = &app.events.items;
    let end = items.len().saturating_sub(app.events.back);
    let start = end.saturating_sub(height);
    let lines: Vec<Line> = items
        .range(start..end)
        .map(|event| {
            let time = event.time.get(11..23).unwrap_or(&event.time);
            Line::from(vec![
                Span::styled(
                    format!("{:>6} {time} ", event.seq),
                    Style::default().add_modifier(Modifier::DIM),
                ),
                Span::raw(format!(
                    "{}{} {}",
                    event
                        .child
                        .as_deref()
                        .map(|c| format!("{c}: "))
                        .unwrap_or_default(),
                    event.kind,
                    ansi::strip(&event.detail)
                )),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(Text::from(lines)).block(block), area);
}

/// The manifest errors in force, with `file:line:col` and the hint.
pub fn errors(frame: &mut Frame, area: Rect, app: &App) {
    let errors = &app.status.errors;
    let block = block(
        app,
        Pane::Errors,
        format!("manifest errors ({})", errors.len()),
    );
    let mut lines: Vec<Line> = Vec::new();
    if errors.is_empty() {
        lines.push(Line::raw("no manifest errors in force"));
    }
    for error in errors.iter().skip(app.errors_scroll) {
        lines.push(Line::from(vec![
            Span::styled(
                format!("{} ", error.location()),
                Style::default().add_modifier(Modifier::BOLD),
            ),
            Span::raw(ansi::strip(&error.message)),
        ]));
        if let Some(hint) = &error.hint {
            lines.push(Line::raw(format!("  hint: {}", ansi::strip(hint))));
        }
    }
    frame.render_widget(
        Paragraph::new(Text::from(lines))
            .wrap(Wrap { trim: false })
            .block(block),
        area,
    );
}
