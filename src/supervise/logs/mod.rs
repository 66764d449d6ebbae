//! Captured output: pipe pumping, redaction, the per-child ring and file, followers, and the foreground
//! stream. The file and the foreground stream are written by threads of their own through queues bounded by
//! bytes ([`queue`]), so neither a full disk nor a slow terminal can block a pump or an async worker; the
//! memory bound is stated in [`book`].

pub mod book;
pub mod foreground;
pub mod pump;
pub mod queue;
pub mod redact;
pub mod rotate;
pub mod writer;

pub use book::{ChildLog, LogBook, LogFollower, LogItem, LogLine, Stream};
pub use foreground::ForegroundSink;
pub use rotate::Rotation;
pub use writer::FileHealth;
