//! Supervision: spawning, reaping, and one actor per child incarnation.
pub mod backoff;
pub mod child;
pub mod crashloop;
pub mod event;
pub mod logs;
pub mod os;
pub mod proc;
pub mod reaper;
pub mod spawn;
