//! The payment status machine (api.md §5.10): the one place that says which transitions exist.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    Pending,
    Processing,
    Completed,
    Failed,
    Cancelled,
}

pub const ALL: [PaymentStatus; 5] = [
    PaymentStatus::Pending,
    PaymentStatus::Processing,
    PaymentStatus::Completed,
    PaymentStatus::Failed,
    PaymentStatus::Cancelled,
];

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Processing => "processing",
            PaymentStatus::Completed => "completed",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Cancelled => "cancelled",
        }
    }

    /// Case-insensitive parse of the API spelling.
    pub fn parse(text: &str) -> Option<Self> {
        ALL.into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
    }

    pub fn is_terminal(self) -> bool {
        self.targets().is_empty()
    }

    /// Allowed targets; "to the same status" is never allowed.
    pub fn targets(self) -> &'static [PaymentStatus] {
        match self {
            PaymentStatus::Pending => &[
                PaymentStatus::Processing,
                PaymentStatus::Cancelled,
                PaymentStatus::Failed,
            ],
            PaymentStatus::Processing => &[PaymentStatus::Completed, PaymentStatus::Failed],
            PaymentStatus::Completed | PaymentStatus::Failed | PaymentStatus::Cancelled => &[],
        }
    }

    pub fn can_become(self, to: PaymentStatus) -> bool {
        self.targets().contains(&to)
    }
}

/// A stored status that is none of the five.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown payment status {0:?}")]
pub struct UnknownStatus(pub String);

/// Reads a stored status (the store's `status` column).
impl TryFrom<String> for PaymentStatus {
    type Error = UnknownStatus;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        PaymentStatus::parse(&text).ok_or(UnknownStatus(text))
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::{PaymentStatus::*, *};

    #[test]
    fn exhaustive_transition_table() {
        let allowed = [
            (Pending, Processing),
            (Pending, Cancelled),
            (Pending, Failed),
            (Processing, Completed),
            (Processing, Failed),
        ];
        for from in ALL {
            for to in ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
        assert!(Completed.is_terminal() && Failed.is_terminal() && Cancelled.is_terminal());
        assert!(!Pending.is_terminal());
    }

    #[test]
    fn parses_case_insensitively() {
        assert_eq!(PaymentStatus::parse("PENDING"), Some(Pending));
        assert_eq!(PaymentStatus::parse("done"), None);
    }

    #[test]
    fn reads_stored_statuses() {
        for s in ALL {
            assert_eq!(PaymentStatus::try_from(s.as_str().to_owned()), Ok(s));
        }
        assert_eq!(
            PaymentStatus::try_from("done".to_owned()),
            Err(UnknownStatus("done".into()))
        );
    }
}
