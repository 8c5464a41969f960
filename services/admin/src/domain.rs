//! Input rules of the admin API that are not generic field rules: roles, the bounds of a new
//! password (its rule is kit's, api.md §4.4, checked here too so all violations are reported
//! together), config keys and values (api.md §6.12). Pure.

use payplane_kit::validate::Text;

/// Roles as spelled on the wire.
pub const ROLES: [&str; 3] = ["ADMIN", "CUSTOMER", "VENDOR"];

/// A user's `name`: 1..255 characters (api.md §6.5, §6.6).
pub const NAME: Text = Text::len(1, 255);
/// A status change's `reason`: 1..500, multi-line; empty means absent (api.md §6.8).
pub const REASON: Text = Text::multiline(1, 500);
/// The user list's `search`: 1..255 characters (api.md §6.3).
pub const USER_SEARCH: Text = Text::len(1, 255);
/// The user list's sort keys (api.md §6.3).
pub const USER_SORT_KEYS: [&str; 4] = ["createdAt", "email", "name", "role"];
/// Sort directions.
pub const ORDERS: [&str; 2] = ["asc", "desc"];
/// The audit log's `resourceId` filter: 1..255 characters (api.md §6.10).
pub const RESOURCE_ID: Text = Text::len(1, 255);
/// The highest `limit` of a list (api.md §1.6).
pub const LIST_LIMIT_MAX: i64 = 100;
/// The bounds and the pattern of a new user's password (api.md §4.4); the rule itself is
/// [`payplane_kit::password::rule`].
pub use payplane_kit::password::{
    MAX as PASSWORD_MAX, MIN as PASSWORD_MIN, PATTERN as PASSWORD_PATTERN,
};

/// The longest config key, and the key rule [`config_key_ok`] checks (api.md §6.12).
pub const CONFIG_KEY_MAX: usize = 128;
pub const CONFIG_KEY_PATTERN: &str = "^[a-z0-9]+([._-][a-z0-9]+)*$";
/// A config entry's `description`: 0..500 characters, multi-line.
pub const CONFIG_DESCRIPTION: Text = Text::multiline(0, 500);

/// A config value: at most 64 KiB compact, 32 levels deep, and storable exactly in `jsonb`
/// (no NUL, numbers that read back unchanged).
pub const CONFIG_VALUE_LIMITS: payplane_kit::storable::Limits = payplane_kit::storable::Limits {
    max_bytes: 65_536,
    max_depth: 32,
};

/// `^[a-z0-9]+([._-][a-z0-9]+)*$`, 1..128 characters.
pub fn config_key_ok(key: &str) -> bool {
    if key.is_empty() || key.len() > CONFIG_KEY_MAX {
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
}
