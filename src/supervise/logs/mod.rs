//! Captured output: pipe pumping, the per-child ring and file, followers, and the foreground stream.

pub mod book;
pub mod foreground;
pub mod pump;
pub mod rotate;

pub use book::{ChildLog, LogBook, LogFollower, LogItem, LogLine, Stream};
pub use foreground::ForegroundSink;
pub use rotate::Rotation;
