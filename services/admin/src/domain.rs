//! Input rules of the admin API that are not generic field rules: roles, the password rule
//! of registration (api.md §4.4, checked here too so all violations are reported together),
//! config keys and values (api.md §6.12). Pure.

/// Roles as spelled on the wire.
pub const ROLES: [&str; 3] = ["ADMIN", "CUSTOMER", "VENDOR"];

/// A config value: at most 64 KiB compact, 32 levels deep, and storable exactly in `jsonb`
/// (no NUL, numbers that read back unchanged).
pub const CONFIG_VALUE_LIMITS: payplane_kit::storable::Limits = payplane_kit::storable::Limits {
    max_bytes: 65_536,
    max_depth: 32,
};

/// 12..255 characters with an ASCII upper-case letter, a lower-case letter, a digit and a
/// character that is not an ASCII letter or digit.
pub fn password_rule(password: &str) -> Result<(), &'static str> {
    let n = password.chars().count();
    if n < 12 {
        return Err("must be at least 12 characters");
    }
    if n > 255 {
        return Err("must be at most 255 characters");
    }
    let has = |f: fn(&char) -> bool| password.chars().any(|c| f(&c));
    if has(char::is_ascii_uppercase)
        && has(char::is_ascii_lowercase)
        && has(char::is_ascii_digit)
        && has(|c| !c.is_ascii_alphanumeric())
    {
        Ok(())
    } else {
        Err("must contain an upper-case letter, a lower-case letter, a digit and a symbol")
    }
}

/// `^[a-z0-9]+([._-][a-z0-9]+)*$`, 1..128 characters.
pub fn config_key_ok(key: &str) -> bool {
    if key.is_empty() || key.len() > 128 {
        return false;
    }
    let mut prev_sep = true;
    for b in key.bytes() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' => prev_sep = false,
            b'.' | b'_' | b'-' if !prev_sep => prev_sep = true,
            _ => return false,
        }
    }
    !prev_sep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keys() {
        for ok in ["a", "payment.min_amount", "app-version.2", "x_1.y-2"] {
            assert!(config_key_ok(ok), "{ok}");
        }
        for bad in [
            "",
            "A",
            ".a",
            "a.",
            "a..b",
            "a._b",
            "a b",
            "ä",
            &"a".repeat(129),
        ] {
            assert!(!config_key_ok(bad), "{bad}");
        }
        assert!(config_key_ok(&"a".repeat(128)));
    }

    #[test]
    fn passwords() {
        assert!(password_rule("TestPassword123!").is_ok());
        for bad in [
            "Short1!",
            "testpassword123!",
            "TESTPASSWORD123!",
            "TestPassword!!!",
            "TestPassword123",
        ] {
            assert!(password_rule(bad).is_err(), "{bad}");
        }
    }
}
