//! The fields a new account is made of (api.md §4.4, §6.5), read the same way wherever one is
//! created: auth's registration and internal creation, admin's user creation. Pure.

use crate::{
    password,
    validate::{Fields, Text},
};

/// A user's `name`: 1..255 characters.
pub const NAME: Text = Text::len(1, 255);

/// A new account's `email`, `password` (meeting [`password::rule`]) and `name`, all required;
/// `None` where one is missing or invalid, its error then being in the [`Fields`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signup {
    pub email: Option<String>,
    pub password: Option<String>,
    pub name: Option<String>,
}

impl Signup {
    /// Reads them from `f` in this order, the order their errors are reported in.
    pub fn read(f: &mut Fields<'_>) -> Self {
        Self {
            email: f.email("email", true),
            password: password::field(f, "password"),
            name: f.text("name", true, NAME),
        }
    }
}
