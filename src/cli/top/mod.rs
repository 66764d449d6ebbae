//! `herder top`: a live terminal UI over the control API (ratatui + crossterm).
//!
//! It is a client like every other command (`--socket`, `--dir`, discovery) and keeps no
//! second source of truth: the table is `GET /v1/status`, the panes are the event and log
//! streams, and the keys send the same commands as `herder restart` (audited with the
//! user's uid as from the CLI).
//!
//! * [`app`]: the state and how keys and updates change it (synchronous, tested without a
//!   terminal); [`input`]: the key bindings and the help table;
//! * [`render`] and [`panes`]: drawing one frame; [`rows`], [`logview`], [`detail`],
//!   [`ansi`], [`model`]: what the panes show and how;
//! * [`connection`]: the streams and requests, with reconnection.
//!
//! The loop below redraws only when something changed, and at most [`MAX_FPS`] times a
//! second however fast updates come; a once-a-second tick keeps uptimes going. An idle
//! `top` therefore wakes about once a second, plus one status request every five seconds
//! for CPU and memory.

pub mod ansi;
pub mod app;
pub mod connection;
pub mod detail;
pub mod input;
pub mod logview;
pub mod model;
pub mod panes;
pub mod render;
pub mod rows;

use std::io;
use std::time::Duration;

use clap::Args;
use crossterm::event::{
    DisableMouseCapture, EnableMouseCapture, Event, EventStream, KeyEventKind, MouseEvent,
};
use futures_util::StreamExt;
use ratatui::DefaultTerminal;
use tokio::sync::mpsc;
use tokio::time::Instant;

use self::app::{App, Effect, Link, Pane, Update};
use self::connection::Connection;
use super::exit::Exit;
use super::remote::{ConnectArgs, RemoteError, block_on, connect};

/// Redraws per second at most.
pub const MAX_FPS: u32 = 10;

/// Updates applied between two frames at most (the rest wait for the next frame).
const DRAIN: usize = 1024;

/// Arguments of `herder top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// How to reach the instance.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Runs the TUI until `q`; exit 0, 4 without a running instance.
pub fn run(args: &TopArgs) -> u8 {
    block_on(async {
        let client = connect(&args.connect).await?;
        let target = client.socket().display().to_string();
        let (connection, updates) = Connection::start(client);
        let mut terminal = ratatui::init();
        let mouse = crossterm::execute!(io::stdout(), EnableMouseCapture);
        let result = run_loop(&mut terminal, App::new(target), connection, updates).await;
        if mouse.is_ok() {
            let _ = crossterm::execute!(io::stdout(), DisableMouseCapture);
        }
        ratatui::restore();
        result.map_err(RemoteError::Output)?;
        Ok(Exit::OK)
    })
}

async fn run_loop(
    terminal: &mut DefaultTerminal,
    mut app: App,
    mut connection: Connection,
    mut updates: mpsc::Receiver<Update>,
) -> io::Result<()> {
    let frame = Duration::from_secs(1) / MAX_FPS;
    let mut input = EventStream::new();
    let mut clock = tokio::time::interval(Duration::from_secs(1));
    clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_tick = Instant::now();
    let mut last_draw = Instant::now() - frame;
    let mut dirty = true;
    loop {
        if dirty && last_draw.elapsed() >= frame {
            terminal.draw(|f| render::draw(f, &mut app))?;
            last_draw = Instant::now();
            dirty = false;
        }
        let mut reconnected = false;
        tokio::select! {
            event = input.next() => match event {
                Some(Ok(Event::Key(key))) if key.kind != KeyEventKind::Release => {
                    for effect in app.key(key) {
                        if effect == Effect::Quit {
                            return Ok(());
                        }
                        connection.carry_out(effect);
                    }
                    dirty = true;
                }
                Some(Ok(Event::Mouse(mouse))) => dirty |= wheel(&mut app, mouse, terminal.size()?.height),
                Some(Ok(Event::Resize(..))) => dirty = true,
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error),
                None => return Ok(()),
            },
            update = updates.recv() => {
                let Some(update) = update else { return Ok(()) };
                let mut next = Some(update);
                let mut applied = 0;
                while let Some(update) = next {
                    reconnected |= matches!(update, Update::Connected)
                        && matches!(app.link, Link::Lost(_));
                    app.update(update);
                    applied += 1;
                    next = if applied < DRAIN { updates.try_recv().ok() } else { None };
                }
                dirty = true;
            }
            _ = clock.tick() => {
                app.tick(last_tick.elapsed());
                last_tick = Instant::now();
                dirty = true;
            }
            () = tokio::time::sleep_until(last_draw + frame), if dirty => {}
        }
        if connection.follow_logs(app.log_source(), reconnected) {
            app.update(Update::LogReset);
        }
    }
}

/// Scrolls the pane under the pointer by three lines; whether anything moved.
fn wheel(app: &mut App, mouse: MouseEvent, height: u16) -> bool {
    let Some(up) = input::wheel(mouse) else {
        return false;
    };
    let focus = app.focus;
    if !app.plain {
        app.focus = if mouse.row <= height / 2 {
            Pane::Children
        } else {
            app.lower
        };
    }
    app.scroll(if up { -3 } else { 3 });
    app.focus = focus;
    true
}
