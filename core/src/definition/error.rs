//! Why a definition file cannot be used: the file, the field at fault, and what is wrong.

/// A definition file that cannot be used, with the file and the field at fault.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {field}: {message}")]
pub struct LoadError {
    /// The definition file.
    pub file: String,
    /// Path of the offending field inside the file.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// A [`LoadError`] for `field` of `file`.
pub(super) fn error(file: &str, field: impl Into<String>, message: impl Into<String>) -> LoadError {
    LoadError {
        file: file.to_string(),
        field: field.into(),
        message: message.into(),
    }
}
