//! Printing an error with every cause below it. Each error type says only what went wrong at
//! its own level and keeps the cause in `#[source]`; whoever prints an error (the exit message,
//! a warning, an error folded into another's detail) prints the whole chain through
//! [`ErrorCauses::causes`], "outer: inner: innermost", each level once.

use std::error::Error;
use std::fmt;

/// An error and its causes, displayed "outer: inner: innermost".
pub struct Causes<'a>(&'a (dyn Error + 'static));

impl fmt::Display for Causes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

pub trait ErrorCauses {
    /// This error and every cause below it, for a message a person reads.
    fn causes(&self) -> Causes<'_>;
}

impl<E: Error + 'static> ErrorCauses for E {
    fn causes(&self) -> Causes<'_> {
        Causes(self)
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCauses;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read /m/x")]
    struct ReadFailed {
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("layer /models")]
    struct LayerFailed {
        #[source]
        cause: ReadFailed,
    }

    #[test]
    fn every_cause_is_printed_once_in_order() {
        let error = LayerFailed {
            cause: ReadFailed {
                source: std::io::Error::other("permission denied"),
            },
        };
        assert_eq!(
            error.causes().to_string(),
            "layer /models: cannot read /m/x: permission denied"
        );
    }
}
