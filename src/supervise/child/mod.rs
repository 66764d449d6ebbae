//! One child incarnation: its actor, handle, commands and state machine.
pub mod state;
