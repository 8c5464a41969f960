//! Amounts and currencies (api.md §1.6): exact decimals with two fraction digits, never
//! floating point; the 40-currency whitelist.

use std::{fmt, str::FromStr};

use rust_decimal::Decimal;

/// Smallest and largest payment amount (data.md §3.2).
pub const MIN_AMOUNT: Decimal = Decimal::from_parts(1, 0, 0, false, 2);
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 2);

/// The money text rule (api.md §1.6) as [`Amount::parse`] reads it.
pub const MONEY_PATTERN: &str = r"^(0|[1-9][0-9]*)(\.[0-9]{1,2})?$";
/// A payment amount's text within [`MIN_AMOUNT`]..=[`MAX_AMOUNT`] (0.01 to 10 000 000.00), for
/// the OpenAPI document: [`MONEY_PATTERN`] with the bounds spelled out.
pub const AMOUNT_PATTERN: &str =
    r"^(0\.(0[1-9]|[1-9][0-9]?)|[1-9][0-9]{0,6}(\.[0-9]{1,2})?|10000000(\.00?)?)$";
/// A money filter's text within 0..=[`MAX_AMOUNT`] (filters take any non-negative amount).
pub const FILTER_AMOUNT_PATTERN: &str = r"^((0|[1-9][0-9]{0,6})(\.[0-9]{1,2})?|10000000(\.00?)?)$";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("must be a decimal number with at most two fraction digits")]
    Format,
    #[error("must be at least 0.01")]
    TooSmall,
    #[error("must be at most 10000000.00")]
    TooLarge,
    #[error("must be one of the supported currency codes")]
    Currency,
}

/// A positive amount in a payment's currency, exact to the cent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(Decimal);

impl Amount {
    /// The smallest payment amount, 0.01.
    pub const MIN: Amount = Amount(MIN_AMOUNT);

    /// Parses the decimal text of a JSON string or number: `^(0|[1-9][0-9]*)(\.[0-9]{1,2})?$`,
    /// no sign, no exponent, then checks the bounds.
    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        let (int, frac) = text
            .split_once('.')
            .map_or((text, None), |(i, f)| (i, Some(f)));
        let int_ok = int == "0"
            || (!int.is_empty()
                && !int.starts_with('0')
                && int.bytes().all(|b| b.is_ascii_digit()));
        let frac_ok = frac
            .is_none_or(|f| (1..=2).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()));
        if !int_ok || !frac_ok || int.len() > 12 {
            return Err(MoneyError::Format);
        }
        let value = Decimal::from_str(text).map_err(|_| MoneyError::Format)?;
        Self::new(value)
    }

    pub fn new(value: Decimal) -> Result<Self, MoneyError> {
        if value.scale() > 2 && value.normalize().scale() > 2 {
            return Err(MoneyError::Format);
        }
        if value < MIN_AMOUNT {
            return Err(MoneyError::TooSmall);
        }
        if value > MAX_AMOUNT {
            return Err(MoneyError::TooLarge);
        }
        let mut v = value;
        v.rescale(2);
        Ok(Self(v))
    }

    /// An amount given in cents; `None` outside 1..=1 000 000 000 cents.
    pub const fn from_cents(cents: u32) -> Option<Self> {
        if cents == 0 || cents > 1_000_000_000 {
            None
        } else {
            Some(Self(Decimal::from_parts(cents, 0, 0, false, 2)))
        }
    }

    pub fn value(self) -> Decimal {
        self.0
    }
}

/// Reads a stored amount (the store's `amount` column).
impl TryFrom<Decimal> for Amount {
    type Error = MoneyError;

    fn try_from(value: Decimal) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl fmt::Display for Amount {
    /// Always two fraction digits (`"1000.00"`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2}", self.0)
    }
}

/// The supported currencies (input is upper-cased).
pub const CURRENCIES: [&str; 40] = [
    "USD", "EUR", "GBP", "JPY", "AUD", "CAD", "CHF", "CNY", "INR", "MXN", "BRL", "KRW", "SGD",
    "HKD", "NOK", "SEK", "DKK", "NZD", "ZAR", "RUB", "AED", "SAR", "THB", "MYR", "IDR", "PHP",
    "VND", "PLN", "CZK", "HUF", "ILS", "TRY", "TWD", "CLP", "COP", "PEN", "ARS", "EGP", "NGN",
    "KES",
];

/// A whitelisted currency code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(&'static str);

impl Currency {
    /// The default currency of a payment.
    pub const USD: Currency = Currency("USD");

    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        let upper = text.trim().to_ascii_uppercase();
        CURRENCIES
            .iter()
            .find(|c| **c == upper)
            .map(|c| Currency(c))
            .ok_or(MoneyError::Currency)
    }

    pub fn code(self) -> &'static str {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_the_contract_forms() {
        assert_eq!(Amount::parse("1000").unwrap().to_string(), "1000.00");
        assert_eq!(Amount::parse("0.5").unwrap().to_string(), "0.50");
        assert_eq!(Amount::parse("0.01").unwrap().to_string(), "0.01");
        assert_eq!(
            Amount::parse("10000000.00").unwrap().to_string(),
            "10000000.00"
        );
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "", "01", "1.", ".5", "1.234", "-1", "+1", "1e3", "1,00", " 1", "abc", "1.2.3",
        ] {
            assert_eq!(Amount::parse(bad), Err(MoneyError::Format), "{bad:?}");
        }
        assert_eq!(Amount::parse("0"), Err(MoneyError::TooSmall));
        assert_eq!(Amount::parse("0.00"), Err(MoneyError::TooSmall));
        assert_eq!(Amount::parse("10000000.01"), Err(MoneyError::TooLarge));
    }

    #[test]
    fn cents_and_stored_values() {
        assert_eq!(
            Amount::from_cents(1).map(|a| a.to_string()).as_deref(),
            Some("0.01")
        );
        assert_eq!(Amount::from_cents(0), None);
        assert_eq!(Amount::from_cents(1_000_000_001), None);
        assert_eq!(
            Amount::try_from(Decimal::new(5, 0)).map(|a| a.to_string()),
            Ok("5.00".into())
        );
        assert_eq!(Amount::try_from(Decimal::ZERO), Err(MoneyError::TooSmall));
    }

    #[test]
    fn currency_whitelist_is_case_insensitive() {
        assert_eq!(Currency::parse("usd").unwrap().code(), "USD");
        assert_eq!(Currency::parse("XXX"), Err(MoneyError::Currency));
        assert_eq!(CURRENCIES.len(), 40);
    }

    proptest! {
        #[test]
        fn every_cent_value_round_trips(cents in 1u64..=1_000_000_000) {
            let text = format!("{}.{:02}", cents / 100, cents % 100);
            let amount = Amount::parse(&text).unwrap();
            prop_assert_eq!(amount.to_string(), text);
        }
    }
}
