//! The routing-key → event-type / rooms mapping of websocket.md §6, and the rooms, filters and
//! client messages of §2–§5. Pure functions over JSON; no I/O.

use payplane_events::{admin, auth, payments};
use serde_json::{Value, json};
use uuid::Uuid;

/// What to do with one broker message.
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatch {
    /// The client-facing `eventType`, or `None` when nothing is sent.
    pub event_type: Option<&'static str>,
    pub rooms: Vec<String>,
    /// The full `event` message, serialized once for every recipient.
    pub message: Option<String>,
    pub action: Option<Action>,
    /// For payment events: the payment's parties as of this event. The hub drops connections
    /// that lost access from the payment's room before delivering (a recipient replaced by an
    /// edit must not see the payment's next events).
    pub parties: Option<Parties>,
}

/// A payment and who may see it besides admins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parties {
    pub payment: Uuid,
    pub sender: Uuid,
    pub recipient: Uuid,
}

/// A forced close that follows an event (websocket.md §6, §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    CloseSession { session_id: Uuid, code: u16 },
    CloseUser { user_id: Uuid, code: u16 },
}

pub const SESSION_REVOKED_EVENT: &str = "session:revoked";

fn uuid_at(data: &Value, field: &str) -> Option<Uuid> {
    data.get(field)
        .or_else(|| data.get("payment").and_then(|p| p.get(field)))
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
}

fn payment_event(key: &str) -> Option<&'static str> {
    Some(match key {
        payments::PAYMENT_CREATED => "payment:created",
        payments::PAYMENT_UPDATED => "payment:updated",
        payments::PAYMENT_PROCESSING => "payment:processing",
        payments::PAYMENT_COMPLETED => "payment:completed",
        payments::PAYMENT_FAILED => "payment:failed",
        payments::PAYMENT_CANCELLED => "payment:cancelled",
        _ => return None,
    })
}

/// Maps an event envelope (events.md §2.1) to what the hub does. `None` for keys that map to
/// nothing or envelopes missing the fields the mapping needs.
pub fn map_event(envelope: &Value) -> Option<Dispatch> {
    let key = envelope.get("type")?.as_str()?;
    let data = envelope.get("data")?;
    let user_room = |field: &str| uuid_at(data, field).map(|u| format!("user:{u}"));
    let mut parties = None;
    let (event_type, rooms, action): (Option<&'static str>, Vec<String>, Option<Action>) =
        if let Some(t) = payment_event(key) {
            let payment = uuid_at(data, "paymentId")?;
            parties = Some(Parties {
                payment,
                sender: uuid_at(data, "senderId")?,
                recipient: uuid_at(data, "recipientId")?,
            });
            (
                Some(t),
                vec![
                    user_room("senderId")?,
                    user_room("recipientId")?,
                    format!("payment:{payment}"),
                    "role:admin".to_owned(),
                ],
                None,
            )
        } else {
            match key {
                auth::SESSION_REVOKED => (
                    Some(SESSION_REVOKED_EVENT),
                    vec![user_room("userId")?],
                    Some(Action::CloseSession {
                        session_id: uuid_at(data, "sessionId")?,
                        code: 4001,
                    }),
                ),
                auth::USER_LOGIN => (Some("session:login"), vec![user_room("userId")?], None),
                auth::USER_LOGOUT => (Some("session:logout"), vec![user_room("userId")?], None),
                admin::AUDIT_CREATED => {
                    (Some("admin:audit-created"), vec!["role:admin".into()], None)
                }
                admin::CONFIG_UPDATED => (
                    Some("admin:config-updated"),
                    vec!["role:admin".into()],
                    None,
                ),
                auth::USER_UPDATED => {
                    let role_changed = data
                        .get("changedFields")
                        .and_then(Value::as_array)
                        .is_some_and(|f| f.iter().any(|v| v == "role"));
                    if !role_changed {
                        return None;
                    }
                    let user_id = uuid_at(data, "userId")?;
                    (
                        None,
                        Vec::new(),
                        Some(Action::CloseUser {
                            user_id,
                            code: 4002,
                        }),
                    )
                }
                auth::USER_DELETED => {
                    let user_id = uuid_at(data, "userId")?;
                    (
                        None,
                        Vec::new(),
                        Some(Action::CloseUser {
                            user_id,
                            code: 4001,
                        }),
                    )
                }
                _ => return None,
            }
        };
    let message = event_type.map(|t| {
        json!({
            "type": "event",
            "id": envelope.get("id").cloned().unwrap_or(Value::Null),
            "timestamp": envelope.get("timestamp").cloned().unwrap_or(Value::Null),
            "payload": { "eventType": t, "data": data },
        })
        .to_string()
    });
    Some(Dispatch {
        event_type,
        rooms,
        message,
        action,
        parties,
    })
}

/// A room name of websocket.md §4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Room {
    User(Uuid),
    Role(String),
    Broadcast,
    Payment(Uuid),
}

fn lower_uuid(s: &str) -> Option<Uuid> {
    // Ids in room names are lower-case canonical UUIDs.
    (s.len() == 36 && s == s.to_ascii_lowercase())
        .then(|| Uuid::parse_str(s).ok())
        .flatten()
}

pub fn parse_room(name: &str) -> Option<Room> {
    if name == "broadcast" {
        return Some(Room::Broadcast);
    }
    let (kind, rest) = name.split_once(':')?;
    match kind {
        "user" => lower_uuid(rest).map(Room::User),
        "payment" => lower_uuid(rest).map(Room::Payment),
        "role" if matches!(rest, "admin" | "customer" | "vendor") => {
            Some(Room::Role(rest.to_owned()))
        }
        _ => None,
    }
}

/// Whether an event-type filter entry matches (websocket.md §5).
pub fn filter_matches(entry: &str, event_type: &str) -> bool {
    if entry == "*" || entry == event_type {
        return true;
    }
    entry.strip_suffix(":*").is_some_and(|prefix| {
        event_type
            .strip_prefix(prefix)
            .is_some_and(|r| r.starts_with(':'))
    })
}

/// What a client asked for (websocket.md §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    Ping,
    Subscribe(Target),
    Unsubscribe(Target),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Room(String),
    EventType(String),
}

/// A client message that cannot be served: the `error` code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

fn invalid(message: &str) -> Refusal {
    Refusal {
        code: "INVALID_MESSAGE",
        message: message.to_owned(),
    }
}

/// Parses a text frame; returns the echoable id alongside.
pub fn parse_client(text: &str) -> (Option<String>, Result<ClientMessage, Refusal>) {
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(text) else {
        return (None, Err(invalid("Message must be a JSON object")));
    };
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| s.chars().count() <= 64)
        .map(str::to_owned);
    let Some(kind) = obj.get("type").and_then(Value::as_str) else {
        return (id, Err(invalid("Message needs a string type")));
    };
    let target = || -> Result<Target, Refusal> {
        let payload = obj
            .get("payload")
            .and_then(Value::as_object)
            .ok_or_else(|| invalid("payload must be an object with room or eventType"))?;
        match (payload.get("room"), payload.get("eventType")) {
            (Some(Value::String(r)), None) => Ok(Target::Room(r.clone())),
            (None, Some(Value::String(t))) if (1..=64).contains(&t.chars().count()) => {
                Ok(Target::EventType(t.clone()))
            }
            _ => Err(invalid("payload needs exactly one of room or eventType")),
        }
    };
    let msg = match kind {
        "ping" => Ok(ClientMessage::Ping),
        "subscribe" => target().map(ClientMessage::Subscribe),
        "unsubscribe" => target().map(ClientMessage::Unsubscribe),
        other => Err(Refusal {
            code: "UNKNOWN_TYPE",
            message: format!("Unknown message type {other}"),
        }),
    };
    (id, msg)
}

/// A server message of websocket.md §3.2.
pub fn server_message(kind: &str, payload: Option<Value>, id: Option<&str>) -> String {
    let mut m =
        json!({ "type": kind, "timestamp": payplane_events::time::format(&chrono::Utc::now()) });
    if let Some(p) = payload {
        m["payload"] = p;
    }
    if let Some(id) = id {
        m["id"] = Value::from(id);
    }
    m.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_events_go_to_both_parties_the_payment_room_and_admins() {
        let (s, r, p) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let env = json!({ "id": "e1", "type": "payments.payment.completed", "timestamp": "t",
            "data": { "paymentId": p, "senderId": s, "recipientId": r, "amount": "25.00" } });
        let d = map_event(&env).unwrap();
        assert_eq!(d.event_type, Some("payment:completed"));
        assert_eq!(
            d.rooms,
            vec![
                format!("user:{s}"),
                format!("user:{r}"),
                format!("payment:{p}"),
                "role:admin".into()
            ]
        );
        let msg: Value = serde_json::from_str(d.message.as_deref().unwrap()).unwrap();
        assert_eq!(msg["payload"]["data"]["amount"], "25.00");
        assert_eq!(msg["id"], "e1");
    }

    #[test]
    fn session_and_user_events() {
        let (u, sid) = (Uuid::new_v4(), Uuid::new_v4());
        let d = map_event(
            &json!({ "type": "auth.session.revoked", "data": { "userId": u, "sessionId": sid } }),
        )
        .unwrap();
        assert_eq!(
            d.action,
            Some(Action::CloseSession {
                session_id: sid,
                code: 4001
            })
        );
        let d = map_event(&json!({ "type": "auth.user.updated", "data": { "user": {}, "userId": u, "changedFields": ["role"] } })).unwrap();
        assert_eq!(
            d.action,
            Some(Action::CloseUser {
                user_id: u,
                code: 4002
            })
        );
        assert!(d.message.is_none());
        assert!(map_event(&json!({ "type": "auth.user.updated", "data": { "userId": u, "changedFields": ["name"] } })).is_none());
        assert!(map_event(&json!({ "type": "profile.profile.updated", "data": {} })).is_none());
    }

    #[test]
    fn rooms_filters_and_messages() {
        let u = Uuid::new_v4();
        assert_eq!(parse_room(&format!("user:{u}")), Some(Room::User(u)));
        assert_eq!(
            parse_room(&format!("user:{}", u.to_string().to_uppercase())),
            None
        );
        assert_eq!(parse_room("role:admin"), Some(Room::Role("admin".into())));
        assert_eq!(parse_room("role:root"), None);
        assert!(filter_matches("payment:*", "payment:completed"));
        assert!(!filter_matches("pay:*", "payment:completed"));
        assert!(filter_matches("*", "admin:config-updated"));
        assert_eq!(
            parse_client(r#"{"type":"ping","id":"c-1"}"#),
            (Some("c-1".into()), Ok(ClientMessage::Ping))
        );
        assert_eq!(parse_client("[1]").1.unwrap_err().code, "INVALID_MESSAGE");
        assert_eq!(
            parse_client(r#"{"type":"dance"}"#).1.unwrap_err().code,
            "UNKNOWN_TYPE"
        );
        assert_eq!(
            parse_client(r#"{"type":"subscribe","payload":{"room":"a","eventType":"b"}}"#)
                .1
                .unwrap_err()
                .code,
            "INVALID_MESSAGE"
        );
    }
}
