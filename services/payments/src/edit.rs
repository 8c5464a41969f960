//! An edit of a pending payment (api.md §5.9) applied to its row: the fields that change and
//! their previous values, the `type`/`scheduledFor` rules checked on the result. Pure.

use chrono::{DateTime, Utc};
use payplane_events::time;
use payplane_kit::{ApiError, validate::Fields};
use serde_json::{Map, Value, json};

use crate::{
    domain::{
        TYPES,
        input::{self, Input},
    },
    lifecycle::Edit,
    store::{payments::PaymentRow, users::DirUser},
};

/// Applies the edit to the locked row `p`: the fields that change, with their previous values.
pub fn apply(
    p: &mut PaymentRow,
    input: Input,
    new_recipient: Option<DirUser>,
) -> Result<Edit, ApiError> {
    let mut edit = Edit::default();
    if let Some(a) = input.amount
        && a != p.amount
    {
        edit.previous
            .insert("amount".into(), json!(p.amount.to_string()));
        p.amount = a;
        edit.changed.push("amount");
    }
    if let Some(c) = input.currency
        && c.code() != p.currency
    {
        edit.previous.insert("currency".into(), json!(p.currency));
        c.code().clone_into(&mut p.currency);
        edit.changed.push("currency");
    }
    if let Some(d) = input.description
        && d != p.description
    {
        edit.previous
            .insert("description".into(), json!(p.description));
        p.description = d;
        edit.changed.push("description");
    }
    if let Some(r) = new_recipient
        && r.id != p.recipient_id
    {
        edit.previous
            .insert("recipientId".into(), json!(p.recipient_id));
        p.recipient_id = r.id;
        p.recipient_email = r.email;
        p.recipient_name = r.name;
        edit.changed.push("recipientId");
    }
    if let Some(m) = input.metadata
        && m != p.metadata
    {
        p.metadata = m;
        edit.changed.push("metadata");
    }
    apply_schedule(p, input.payment_type, input.scheduled_for, &mut edit)?;
    Ok(edit)
}

/// The `type`/`scheduledFor` part of an edit, checked as a whole (an instant payment drops
/// its schedule).
#[expect(clippy::option_option, reason = "absent, null and a value")]
fn apply_schedule(
    p: &mut PaymentRow,
    new_type: Option<&'static str>,
    scheduled_for: Option<Option<DateTime<Utc>>>,
    edit: &mut Edit,
) -> Result<(), ApiError> {
    let new_type = new_type.unwrap_or(
        TYPES
            .iter()
            .find(|t| **t == p.payment_type)
            .copied()
            .unwrap_or("instant"),
    );
    let new_sched = match scheduled_for {
        Some(v) => v,
        None if new_type == "instant" => None,
        None => p.scheduled_for,
    };
    let empty = Map::new();
    let mut f = Fields::new(&empty);
    input::check_schedule(&mut f, new_type, new_sched);
    f.finish()?;
    if new_type != p.payment_type {
        edit.previous.insert("type".into(), json!(p.payment_type));
        p.payment_type = new_type.to_owned();
        edit.changed.push("type");
    }
    if new_sched != p.scheduled_for {
        edit.previous.insert(
            "scheduledFor".into(),
            p.scheduled_for
                .map_or(Value::Null, |t| Value::String(time::format(&t))),
        );
        p.scheduled_for = new_sched;
        edit.changed.push("scheduledFor");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::Duration;
    use uuid::Uuid;

    use super::*;
    use crate::domain::{
        money::{Amount, Currency},
        status::PaymentStatus,
    };

    fn row() -> PaymentRow {
        let now = Utc::now();
        PaymentRow {
            id: Uuid::new_v4(),
            sender_id: Uuid::new_v4(),
            recipient_id: Uuid::new_v4(),
            amount: Amount::from_cents(1000).unwrap_or(Amount::MIN),
            currency: "USD".into(),
            status: PaymentStatus::Pending,
            payment_type: "scheduled".into(),
            description: "Rent".into(),
            metadata: None,
            psp_transaction_id: None,
            psp_status: None,
            failure_reason: None,
            scheduled_for: Some(now + Duration::days(3)),
            completed_at: None,
            created_at: now,
            updated_at: now,
            sender_email: "s@example.com".into(),
            sender_name: "S".into(),
            recipient_email: "r@example.com".into(),
            recipient_name: "R".into(),
        }
    }

    #[test]
    fn unchanged_values_are_no_change() {
        let mut p = row();
        let input = Input {
            amount: Amount::parse("10.00").ok(),
            currency: Currency::parse("usd").ok(),
            description: Some("Rent".into()),
            ..Input::default()
        };
        let edit = apply(&mut p, input, None).ok().unwrap_or_default();
        assert!(edit.changed.is_empty());
        assert!(edit.previous.is_empty());
    }

    #[test]
    fn changes_record_previous_values() {
        let mut p = row();
        let recipient = DirUser {
            id: Uuid::new_v4(),
            email: "n@example.com".into(),
            name: "N".into(),
            role: "VENDOR".into(),
            is_active: true,
            deleted_at: None,
        };
        let old_recipient = p.recipient_id;
        let input = Input {
            amount: Amount::parse("12.5").ok(),
            currency: Currency::parse("eur").ok(),
            metadata: Some(Some(json!({"k": 1}))),
            ..Input::default()
        };
        let edit = apply(&mut p, input, Some(recipient.clone()))
            .ok()
            .unwrap_or_default();
        assert_eq!(
            edit.changed,
            ["amount", "currency", "recipientId", "metadata"]
        );
        assert_eq!(edit.previous["amount"], json!("10.00"));
        assert_eq!(edit.previous["currency"], json!("USD"));
        assert_eq!(edit.previous["recipientId"], json!(old_recipient));
        assert!(!edit.previous.contains_key("metadata"));
        assert_eq!(p.amount.to_string(), "12.50");
        assert_eq!(p.recipient_id, recipient.id);
        assert_eq!(p.recipient_email, "n@example.com");
    }

    #[test]
    fn becoming_instant_drops_the_schedule() {
        let mut p = row();
        let before = p.scheduled_for;
        let input = Input {
            payment_type: Some("instant"),
            ..Input::default()
        };
        let edit = apply(&mut p, input, None).ok().unwrap_or_default();
        assert_eq!(edit.changed, ["type", "scheduledFor"]);
        assert_eq!(edit.previous["type"], json!("scheduled"));
        assert_eq!(
            edit.previous["scheduledFor"],
            json!(before.map(|t| time::format(&t)))
        );
        assert_eq!(p.scheduled_for, None);
    }

    #[test]
    fn a_scheduled_payment_keeps_a_schedule() {
        let mut p = row();
        let input = Input {
            scheduled_for: Some(None),
            ..Input::default()
        };
        assert!(apply(&mut p, input, None).is_err());
        let mut p = row();
        p.payment_type = "instant".into();
        p.scheduled_for = None;
        let input = Input {
            scheduled_for: Some(Some(Utc::now() + Duration::days(1))),
            ..Input::default()
        };
        assert!(apply(&mut p, input, None).is_err());
    }
}
