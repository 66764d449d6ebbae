//! Supervision: spawning, reaping, and one actor per child incarnation.
pub mod backoff;
pub mod child;
pub mod crashloop;
pub mod event;
pub mod limits;
pub mod logs;
pub mod memwatch;
pub mod os;
pub mod probe;
pub mod proc;
pub mod reaper;
pub mod spawn;
pub mod statefile;
