//! The client secret, kept out of every `Debug`, `Display`, log line and stored value.

use std::fmt;

/// A client secret. `Debug` prints `[redacted]`; there is no `Display`.
///
/// Read it only through [`ClientSecret::expose`], and only to put it into the token request body.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// Wraps a secret. Do this the moment it is read from the environment or the user's options.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret in clear.
    ///
    /// **Warning:** anything this returns must go only into the token request body or the key
    /// derivation of sealed records. Never log it, format it into an error, store it, or return
    /// it to a caller.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = ClientSecret::new("hunter2-very-secret");
        let printed = format!("{s:?} {s:#?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("[redacted]"));
        assert_eq!(s.expose(), "hunter2-very-secret");
    }
}
