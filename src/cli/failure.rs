//! A failed command on its way to the user: the error chain and its class, which decides the exit code.
//!
//! The class is taken where an error enters the CLI: from the module that raised it ([`Classify`]), or
//! stated here for the CLI's own failures (stdout, JSON encoding), which are operational. The CLI never
//! guesses it afterwards by looking for known error types in the chain.

use rolesanywhere_core::{Classify, ErrorClass};

/// An error chain with its class.
pub struct Failure {
    class: ErrorClass,
    error: anyhow::Error,
}

impl Failure {
    /// A failure of the CLI's own (writing stdout, encoding output): operational.
    pub fn operational(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            class: ErrorClass::Operational,
            error: error.into(),
        }
    }

    /// The same failure under an outer message (`message: cause: …`), class kept.
    pub fn context(self, message: &'static str) -> Failure {
        Failure {
            class: self.class,
            error: self.error.context(message),
        }
    }

    /// [`Failure::context`] with a message made at run time (`profile web: …`).
    pub fn context_text(self, message: String) -> Failure {
        Failure {
            class: self.class,
            error: self.error.context(message),
        }
    }

    /// Configuration mistake or operational failure.
    pub fn class(&self) -> ErrorClass {
        self.class
    }

    /// The error chain, outermost first.
    pub fn error(&self) -> &anyhow::Error {
        &self.error
    }
}

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} failure: {:?}", self.class, self.error)
    }
}

impl<E: Classify + std::error::Error + Send + Sync + 'static> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure {
            class: e.class(),
            error: e.into(),
        }
    }
}

/// `.context(…)` for results whose error knows its class.
pub trait Context<T> {
    /// Wraps the error under `message`, keeping its class.
    fn context(self, message: &'static str) -> Result<T, Failure>;
}

impl<T, E: Classify + std::error::Error + Send + Sync + 'static> Context<T> for Result<T, E> {
    fn context(self, message: &'static str) -> Result<T, Failure> {
        self.map_err(|e| Failure::from(e).context(message))
    }
}
