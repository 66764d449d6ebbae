//! Pauses under a paused clock.
