//! `herder top`'s screens, drawn on ratatui's test backend from fixed data and compared
//! with snapshots (`tests/snapshots/`; review changes with `cargo insta review`, or
//! `INSTA_UPDATE=always` and `git diff`).

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use herder::cli::top::app::{App, Effect, Pane, Update};
use herder::cli::top::logview::LogEntry;
use herder::cli::top::model::{EventLine, Limit, ManifestError, Row, Status, Usage};
use herder::cli::top::render;
use herder::reconcile::VerbName;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn status() -> Status {
    Status {
        generation: 4,
        reloads: 3,
        children: vec![
            Row {
                name: "web".into(),
                state: "ready".into(),
                pid: Some(4242),
                restarts: 1,
                uptime_secs: Some(3725.0),
                ready: true,
                healthy: Some(true),
                limits: vec![Limit {
                    name: "memory".into(),
                    value: "64Mi".into(),
                    enforcement: "cgroup".into(),
                }],
                usage: Some(Usage {
                    memory_bytes: Some(12 << 20),
                    cpu_percent: Some(2.5),
                    ..Usage::default()
                }),
                ..Row::default()
            },
            Row {
                name: "db".into(),
                state: "backoff".into(),
                restarts: 3,
                last_exit: Some("exited with code 1".into()),
                ..Row::default()
            },
            Row {
                name: "api".into(),
                state: "waiting".into(),
                reason: Some("waiting for db (ready)".into()),
                labels: [("tier".to_owned(), "back".to_owned())].into(),
                ..Row::default()
            },
        ],
        errors: vec![ManifestError {
            file: Some("/srv/herder.d/bad.yaml".into()),
            line: Some(2),
            column: Some(10),
            message: "command must be a string or a list, found an integer".into(),
            hint: Some("quote the value: \"42\"".into()),
        }],
        shutting_down: false,
    }
}

fn app() -> App {
    let mut app = App::new("/run/herder/app.sock".into());
    app.update(Update::Connected);
    app.update(Update::Status(status()));
    for (n, text) in [
        "listening on :8080",
        "\x1b[31mGET /health\x1b[0m 200",
        "\x1b[2J\x1b[Hhostile clear-screen",
    ]
    .iter()
    .enumerate()
    {
        app.update(Update::Log(LogEntry {
            child: "api".into(),
            stream: if n == 1 { "stderr" } else { "stdout" }.into(),
            text: (*text).into(),
        }));
    }
    app.update(Update::Event(EventLine {
        seq: 7,
        time: "2026-12-07T01:02:03.456Z".into(),
        child: Some("db".into()),
        kind: "exited".into(),
        detail: "code=1 incarnation=2".into(),
    }));
    app
}

fn screen(app: &mut App) -> String {
    let mut terminal = Terminal::new(TestBackend::new(110, 22)).unwrap();
    terminal.draw(|frame| render::draw(frame, app)).unwrap();
    let text = terminal.backend().to_string();
    assert!(
        !text.contains('\x1b'),
        "an escape sequence reached the screen"
    );
    text
}

fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
    app.key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

#[test]
fn the_main_screen() {
    insta::assert_snapshot!("main", screen(&mut app()));
}

#[test]
fn filter_sort_and_the_errors_pane() {
    let mut app = app();
    key(&mut app, KeyCode::Char('/'));
    typed(&mut app, "label:tier=back");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.view.len(), 1);
    key(&mut app, KeyCode::Char('/'));
    for _ in 0.."label:tier=back".len() {
        key(&mut app, KeyCode::Backspace);
    }
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::Char('o'));
    key(&mut app, KeyCode::Char('o'));
    assert_eq!(app.selected_name().as_deref(), Some("api"));
    for _ in 0..3 {
        key(&mut app, KeyCode::Tab);
    }
    assert_eq!(app.focus, Pane::Errors);
    insta::assert_snapshot!("sorted_by_restarts_with_errors", screen(&mut app));
}

#[test]
fn log_search_plain_mode_and_merged_logs() {
    let mut app = app();
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Char('/'));
    typed(&mut app, "get");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.logs.current, None, "case matters by default");
    key(&mut app, KeyCode::Char('i'));
    key(&mut app, KeyCode::Char('n'));
    assert_eq!(app.logs.current, Some(1));
    key(&mut app, KeyCode::Char('c'));
    insta::assert_snapshot!("plain_log_search", screen(&mut app));
    key(&mut app, KeyCode::Char('c'));
    key(&mut app, KeyCode::Char('m'));
    assert!(matches!(
        app.log_source(),
        herder::cli::top::app::LogSource::Merged(names) if names.len() == 3
    ));
}

#[test]
fn help_and_a_confirmation_with_a_reason() {
    let mut app = app();
    key(&mut app, KeyCode::Char('?'));
    insta::assert_snapshot!("help", screen(&mut app));
    key(&mut app, KeyCode::Esc);
    assert!(
        key(&mut app, KeyCode::Char('r')).is_empty(),
        "restart asks first"
    );
    typed(&mut app, "deploy");
    insta::assert_snapshot!("confirm_restart", screen(&mut app));
    let effects = key(&mut app, KeyCode::Enter);
    assert_eq!(
        effects,
        [Effect::Command {
            verb: VerbName::Restart,
            children: vec!["api".into()],
            reason: Some("deploy".into()),
            signal: None,
        }]
    );
    // Marked children: the command goes to all of them; start does not ask.
    key(&mut app, KeyCode::Char(' '));
    key(&mut app, KeyCode::Char(' '));
    let effects = key(&mut app, KeyCode::Char('t'));
    assert!(
        matches!(&effects[..], [Effect::Command { verb: VerbName::Start, children, .. }] if children.len() == 2)
    );
    assert_eq!(key(&mut app, KeyCode::Char('q')), [Effect::Quit]);
}

#[test]
fn disconnected_and_a_thousand_children() {
    let mut app = app();
    app.update(Update::Lost("cannot connect to herder".into()));
    let mut status = status();
    status.children = (0..1000)
        .map(|n| Row {
            name: format!("worker-{n:04}"),
            state: if n % 100 == 0 { "failed" } else { "ready" }.into(),
            pid: Some(10_000 + n),
            ready: n % 100 != 0,
            ..Row::default()
        })
        .collect();
    app.update(Update::Status(status));
    key(&mut app, KeyCode::Char('G'));
    assert_eq!(app.selected_name().as_deref(), Some("worker-0999"));
    insta::assert_snapshot!("thousand_disconnected", screen(&mut app));
}
