//! The one way herder prints an error with its causes: `error: cause: cause` on one line
//! (logs, events, probe results) or one cause per line (the CLI's stderr).

use std::error::Error;
use std::fmt;

/// An error and its `source()` chain, displayed with `separator` between the links.
#[derive(Clone, Copy)]
pub struct ErrorChain<'a> {
    error: &'a dyn Error,
    separator: &'static str,
}

impl<'a> ErrorChain<'a> {
    /// `error: cause: cause`.
    pub fn inline(error: &'a dyn Error) -> Self {
        Self {
            error,
            separator: ": ",
        }
    }

    /// `error` then `\n  caused by: cause` per cause.
    pub fn lines(error: &'a dyn Error) -> Self {
        Self {
            error,
            separator: "\n  caused by: ",
        }
    }
}

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        let mut source = self.error.source();
        while let Some(cause) = source {
            write!(f, "{}{cause}", self.separator)?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("spawn failed")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn causes_follow_the_error() {
        let error = Outer(std::io::Error::other("no such file"));
        assert_eq!(
            ErrorChain::inline(&error).to_string(),
            "spawn failed: no such file"
        );
        assert_eq!(
            ErrorChain::lines(&error).to_string(),
            "spawn failed\n  caused by: no such file"
        );
    }
}
