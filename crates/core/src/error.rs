//! The core's errors. They carry no Python: the binding maps each variant to one exception.

use std::error::Error as StdError;
use std::fmt;

/// An error raised by the host (a reducer or a node), carried through the core unchanged so
/// the binding can hand the original exception back to the caller.
pub struct HostError(pub Box<dyn StdError + Send + Sync>);

impl HostError {
    pub fn msg(message: impl Into<String>) -> Self {
        HostError(message.into().into())
    }
}

impl fmt::Debug for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// The graph as declared cannot run (unknown node, no entry point, reserved name...).
    #[error("{0}")]
    InvalidGraph(String),
    /// A step's writes cannot be applied (two writes to a last-value channel, unknown key...).
    #[error("{0}")]
    InvalidUpdate(String),
    /// The run went past its recursion limit.
    #[error("Recursion limit of {limit} reached without hitting a stop condition. You can increase the limit by setting the `recursion_limit` config key.")]
    Recursion { limit: u64 },
    /// A call was made out of order (e.g. finishing a task that is not in the current step).
    #[error("{0}")]
    State(String),
    /// The host failed inside a callback; the original error is inside.
    #[error("{0}")]
    Host(HostError),
}
