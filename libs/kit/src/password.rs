//! The rule a new password must meet (api.md §4.4), the same wherever one is checked: auth's
//! registration and password change, and admin's user creation (checked there too so all
//! violations are reported together). Pure.

use crate::validate::Fields;

/// The shortest new password.
pub const MIN: usize = 12;
/// The longest password, new or presented (api.md §4.4, §4.5, §4.9).
pub const MAX: usize = 255;
/// [`rule`]'s composition as a pattern, for the OpenAPI documents: an ASCII upper-case
/// letter, a lower-case letter, a digit and a character that is not an ASCII letter or digit.
pub const PATTERN: &str =
    r"^(?=[\s\S]*[A-Z])(?=[\s\S]*[a-z])(?=[\s\S]*[0-9])(?=[\s\S]*[^A-Za-z0-9])[\s\S]*$";

/// 12..255 characters with an ASCII upper-case letter, a lower-case letter, a digit and a
/// character that is not an ASCII letter or digit.
pub fn rule(password: &str) -> Result<(), &'static str> {
    let n = password.chars().count();
    if n < MIN {
        return Err("must be at least 12 characters");
    }
    if n > MAX {
        return Err("must be at most 255 characters");
    }
    let has = |f: fn(&char) -> bool| password.chars().any(|c| f(&c));
    if !(has(char::is_ascii_uppercase)
        && has(char::is_ascii_lowercase)
        && has(char::is_ascii_digit)
        && has(|c| !c.is_ascii_alphanumeric()))
    {
        return Err("must contain an upper-case letter, a lower-case letter, a digit and a symbol");
    }
    Ok(())
}

/// A new password from the required field `name` of `f`, a violation of [`rule`] reported on
/// that field beside the body's other errors.
pub fn field(f: &mut Fields<'_>, name: &str) -> Option<String> {
    let password = f.secret(name, true, 0, usize::MAX);
    if let Some(Err(msg)) = password.as_deref().map(rule) {
        f.push(name, msg);
    }
    password
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords() {
        assert!(rule("TestPassword123!").is_ok());
        for bad in [
            "Short1!",
            "testpassword123!",
            "TESTPASSWORD123!",
            "TestPassword!!!",
            "TestPassword123",
        ] {
            assert!(rule(bad).is_err(), "{bad}");
        }
    }
}
