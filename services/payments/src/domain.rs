//! Payment domain types that validate when constructed. Pure, no I/O.

pub mod input;
pub mod money;
pub mod status;

/// The payment types (api.md §5.2).
pub const TYPES: [&str; 3] = ["instant", "scheduled", "recurring"];
/// The payment statuses in their API spelling.
pub const STATUSES: [&str; 5] = ["pending", "processing", "completed", "failed", "cancelled"];

use payplane_kit::validate::Text;

/// `description` of a payment: 1..500 characters, multi-line (api.md §5.2).
pub const DESCRIPTION: Text = Text::multiline(1, 500);
/// `reason` of a status change: 1..500, multi-line; empty means absent (api.md §5.10).
pub const REASON: Text = Text::multiline(1, 500);
/// `metadata`: at most 16 KiB compact, 10 levels deep, and storable exactly (no NUL, numbers
/// that read back unchanged). Also the import's rule for the metadata it brings over.
pub const METADATA_LIMITS: payplane_kit::storable::Limits = payplane_kit::storable::Limits {
    max_bytes: 16_384,
    max_depth: 10,
};
/// Sort keys of the payment list (api.md §5.4).
pub const SORT_KEYS: [&str; 3] = ["createdAt", "amount", "status"];
/// Sort directions.
pub const ORDERS: [&str; 2] = ["asc", "desc"];
/// The highest `page` of the payment list (its offset must fit the query).
pub const MAX_PAGE: i64 = i32::MAX as i64;
/// The highest `limit` of the payment list (api.md §1.6).
pub const LIST_LIMIT_MAX: i64 = 100;
/// The highest `limit` of the recipients list (api.md §5.5).
pub const RECIPIENTS_LIMIT_MAX: i64 = 500;
/// `search` of the recipients list: 1..100 characters after trimming (api.md §5.5).
pub const RECIPIENT_SEARCH: Text = Text::len(1, 100);
/// `Idempotency-Key`: 1..255 printable ASCII characters (api.md §5.8).
pub const IDEMPOTENCY_KEY_MAX: usize = 255;
/// The printable ASCII range of an `Idempotency-Key` (0x21–0x7E).
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]+$";
/// A PSP webhook's event `id` and `data.pspTransactionId`: 1..255 (api.md §5.12).
pub const PSP_ID: Text = Text::len(1, 255);
/// A PSP webhook's `data.pspStatus`: 1..100.
pub const PSP_STATUS: Text = Text::len(1, 100);
/// A PSP webhook's `data.failureReason`: at most 1000, multi-line.
pub const PSP_FAILURE_REASON: Text = Text::multiline(0, 1000);
