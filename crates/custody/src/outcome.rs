//! How a command ends: done, or denied (exit 1), or an operational error (exit 2).

use std::fmt;

/// A command's result when it did not fail operationally.
pub enum Outcome {
    /// Verified, allowed or done: exit 0.
    Done,
    /// Results were printed and at least one was a denial (batch verification): exit 1.
    SomeDenied,
    /// Results were printed and at least one could not be checked (a missing file): exit 2.
    Usage,
}

/// Marks an error as a verification failure (exit 1) rather than an operational one (exit 2).
#[derive(Debug)]
pub struct Denied {
    pub message: String,
    /// The stable failure code (`cert.expired`, `tlog.inclusion`, …), when there is one.
    pub code: Option<&'static str>,
}

impl Denied {
    /// A denial without a stable code.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: None,
        }
    }

    pub fn coded(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: Some(code),
        }
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match self.code {
            Some(code) => write!(f, " [{code}]"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for Denied {}

/// Ends custody with a given exit status: a build command's own status, or a denial whose
/// details the command already printed (`--output json` prints one document, never two).
#[derive(Debug)]
pub struct ExitWith {
    pub code: u8,
    pub message: String,
    /// The command already wrote its JSON document; main must not add another.
    pub reported: bool,
}

impl fmt::Display for ExitWith {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExitWith {}

/// Renders an error chain on one line: `what failed: object: cause (how to fix)`.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string().replace('\n', " ");
        // Skip a cause that only repeats the end of the previous one (thiserror `{0}` wrappers).
        if parts.last().is_some_and(|prev| prev.ends_with(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}
