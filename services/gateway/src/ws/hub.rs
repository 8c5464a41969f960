//! The registry of open sockets on this replica (websocket.md §4, §6–§8, §10): rooms, the
//! per-user cap, fan-out of one serialized event to every target connection once, bounded
//! outbound queues (slow consumers closed with 1013), forced closes and shutdown. In-memory.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex, OnceLock, RwLock,
        atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::extract::ws::Utf8Bytes;
use payplane_events::auth::Role;
use tokio::sync::{Notify, mpsc};
use uuid::Uuid;

use crate::{
    config::WsLimits,
    graphql::{subscription::payment_event, types::PaymentEvent},
    ws::mapping::{Action, Dispatch, Parties, SESSION_REVOKED_EVENT, filter_matches},
};

/// What a connection's writer sends, in order. The text is behind an `Arc` so each queue slot
/// is 16 bytes: every socket's channel allocates a block of 32 slots up front.
#[derive(Debug)]
pub enum Outbound {
    Text(Arc<Shared>),
    Close(u16, &'static str),
}

/// One event's text, serialised once and shared by every connection it is queued for. The
/// last copy goes when the last of those connections has written it to its socket (a GraphQL
/// subscription socket: handed it to its subscription stream), or closed: that moment ends the
/// fan-out, recorded as `ws_fanout_seconds` from the start of the dispatch.
#[derive(Debug)]
pub struct Shared {
    text: Utf8Bytes,
    dispatched: Instant,
    /// The event as GraphQL subscriptions see it: parsed by the first subscription socket it
    /// reaches, shared by the others (`None` inside: not a payment event). Parsing the text
    /// once per socket was most of a subscription fan-out's CPU.
    payment: OnceLock<Option<Arc<PaymentEvent>>>,
}

impl Shared {
    /// The payment event of this message for GraphQL subscriptions, parsed once.
    pub fn payment_event(&self) -> Option<Arc<PaymentEvent>> {
        self.payment
            .get_or_init(|| payment_event(self.text.as_str()).map(Arc::new))
            .clone()
    }
}

impl std::ops::Deref for Shared {
    type Target = Utf8Bytes;

    fn deref(&self) -> &Utf8Bytes {
        &self.text
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        metrics::histogram!("ws_fanout_seconds").record(self.dispatched.elapsed());
    }
}

/// The shared side of one connection.
#[derive(Debug)]
pub struct Conn {
    pub id: u64,
    pub connection_id: Uuid,
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub role: Role,
    tx: mpsc::Sender<Outbound>,
    pub queued_bytes: AtomicUsize,
    /// A close that must happen now (not queued behind messages): code, or 0 for none.
    pub close_code: AtomicU16,
    pub close_now: Notify,
    pub filter: Mutex<Vec<String>>,
}

impl Conn {
    fn accepts(&self, event_type: &str) -> bool {
        if event_type == SESSION_REVOKED_EVENT {
            return true;
        }
        let filter = self
            .filter
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        filter.is_empty() || filter.iter().any(|e| filter_matches(e, event_type))
    }

    /// Asks the connection's task to close with `code` right away.
    pub fn force_close(&self, code: u16) {
        let _ = self
            .close_code
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
        self.close_now.notify_one();
    }

    /// Called by the writer after a message left the queue.
    pub fn sent(&self, bytes: usize) {
        self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// When a payment's parties were learnt, and the answer (`None` = no such payment): shared by
/// the join-time permission check (which fills it from payments) and the event bridge (which
/// refreshes it from every payment event, so a changed recipient is known at once).
pub type PartiesCache = Arc<Mutex<HashMap<Uuid, (std::time::Instant, Option<(Uuid, Uuid)>)>>>;

#[derive(Default)]
struct Inner {
    conns: HashMap<u64, Arc<Conn>>,
    rooms: HashMap<String, HashSet<u64>>,
    /// Connection ids per user, oldest first.
    by_user: HashMap<Uuid, Vec<u64>>,
    by_session: HashMap<Uuid, HashSet<u64>>,
    /// The rooms a connection joined beyond its automatic ones (most have none), so leaving
    /// touches only the connection's own rooms: a pass over every room per departure made
    /// 19 000 sockets closing at once quadratic (seconds of CPU).
    extra: HashMap<u64, Vec<String>>,
}

/// The hub; cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<RwLock<Inner>>,
    limits: WsLimits,
    next_id: Arc<AtomicU64>,
    shutting_down: Arc<AtomicBool>,
    open: Arc<AtomicUsize>,
    parties: PartiesCache,
}

/// The registered connections among `ids` (a session's, a user's), taken out of the registry
/// so they are closed without holding its lock.
fn live<'a>(inner: &Inner, ids: Option<impl IntoIterator<Item = &'a u64>>) -> Vec<Arc<Conn>> {
    ids.into_iter()
        .flatten()
        .filter_map(|id| inner.conns.get(id).cloned())
        .collect()
}

/// The automatic rooms of a user (websocket.md §1.3).
pub fn automatic_rooms(user_id: Uuid, role: Role) -> [String; 3] {
    [
        format!("user:{user_id}"),
        format!("role:{}", role.as_str().to_ascii_lowercase()),
        "broadcast".to_owned(),
    ]
}

impl Hub {
    pub fn new(limits: WsLimits) -> Self {
        Self {
            inner: Arc::default(),
            limits,
            next_id: Arc::new(AtomicU64::new(1)),
            shutting_down: Arc::default(),
            open: Arc::default(),
            parties: Arc::default(),
        }
    }

    /// The payment-parties cache this hub keeps current from payment events.
    pub fn parties_cache(&self) -> PartiesCache {
        self.parties.clone()
    }

    /// A payment event tells who may see the payment now: refresh the cache and drop from its
    /// room every connection of a user who is no longer a party (admins stay).
    fn reauthorize(&self, p: &Parties) {
        if let Ok(mut cache) = self.parties.lock() {
            cache.insert(
                p.payment,
                (std::time::Instant::now(), Some((p.sender, p.recipient))),
            );
        }
        let room = format!("payment:{}", p.payment);
        let mut inner = self.write();
        let Inner {
            rooms,
            conns,
            extra,
            ..
        } = &mut *inner;
        if let Some(members) = rooms.get_mut(&room) {
            members.retain(|id| {
                let stays = conns.get(id).is_some_and(|c| {
                    c.role == Role::Admin || c.user_id == p.sender || c.user_id == p.recipient
                });
                if !stays && let Some(list) = extra.get_mut(id) {
                    list.retain(|r| *r != room);
                }
                stays
            });
            extra.retain(|_, list| !list.is_empty());
            if members.is_empty() {
                rooms.remove(&room);
            }
        }
    }

    pub fn limits(&self) -> &WsLimits {
        &self.limits
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }

    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Registers a connection in its automatic rooms; closes the user's oldest with 4008 when
    /// over the cap.
    pub fn register(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        role: Role,
    ) -> (Arc<Conn>, mpsc::Receiver<Outbound>) {
        let (tx, rx) = mpsc::channel(self.limits.max_backlog_messages.max(1));
        let conn = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            connection_id: Uuid::new_v4(),
            user_id,
            session_id,
            role,
            tx,
            queued_bytes: AtomicUsize::new(0),
            close_code: AtomicU16::new(0),
            close_now: Notify::new(),
            filter: Mutex::new(Vec::new()),
        });
        let mut evicted = Vec::new();
        {
            let mut inner = self.write();
            inner.conns.insert(conn.id, conn.clone());
            for room in automatic_rooms(user_id, role) {
                inner.rooms.entry(room).or_default().insert(conn.id);
            }
            inner
                .by_session
                .entry(session_id)
                .or_default()
                .insert(conn.id);
            let list = inner.by_user.entry(user_id).or_default();
            list.push(conn.id);
            while list.len() > self.limits.max_per_user {
                evicted.push(list.remove(0));
            }
            evicted.retain(|id| inner.conns.contains_key(id));
            for id in &evicted {
                if let Some(c) = inner.conns.get(id) {
                    c.force_close(4008);
                }
            }
        }
        self.open.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!("ws_connections").increment(1.0);
        (conn, rx)
    }

    /// Removes a connection from every index.
    pub fn unregister(&self, conn: &Conn) {
        let mut inner = self.write();
        if inner.conns.remove(&conn.id).is_none() {
            return;
        }
        let extra = inner.extra.remove(&conn.id).unwrap_or_default();
        for room in automatic_rooms(conn.user_id, conn.role)
            .iter()
            .chain(&extra)
        {
            if let Some(members) = inner.rooms.get_mut(room) {
                members.remove(&conn.id);
                if members.is_empty() {
                    inner.rooms.remove(room);
                }
            }
        }
        if let Some(list) = inner.by_user.get_mut(&conn.user_id) {
            list.retain(|id| *id != conn.id);
            if list.is_empty() {
                inner.by_user.remove(&conn.user_id);
            }
        }
        if let Some(set) = inner.by_session.get_mut(&conn.session_id) {
            set.remove(&conn.id);
            if set.is_empty() {
                inner.by_session.remove(&conn.session_id);
            }
        }
        drop(inner);
        self.open.fetch_sub(1, Ordering::Relaxed);
        metrics::gauge!("ws_connections").decrement(1.0);
    }

    /// How many rooms the connection joined beyond its automatic ones.
    pub fn extra_rooms(&self, conn: &Conn) -> usize {
        self.read().extra.get(&conn.id).map_or(0, Vec::len)
    }

    pub fn in_room(&self, conn: &Conn, room: &str) -> bool {
        self.read()
            .rooms
            .get(room)
            .is_some_and(|m| m.contains(&conn.id))
    }

    pub fn join(&self, conn: &Conn, room: &str) {
        let mut inner = self.write();
        let added = inner
            .rooms
            .entry(room.to_owned())
            .or_default()
            .insert(conn.id);
        if added
            && !automatic_rooms(conn.user_id, conn.role)
                .iter()
                .any(|r| r == room)
        {
            inner
                .extra
                .entry(conn.id)
                .or_default()
                .push(room.to_owned());
        }
    }

    pub fn leave(&self, conn: &Conn, room: &str) {
        let mut inner = self.write();
        if let Some(m) = inner.rooms.get_mut(room) {
            m.remove(&conn.id);
            if m.is_empty() {
                inner.rooms.remove(room);
            }
        }
        if let Some(list) = inner.extra.get_mut(&conn.id) {
            list.retain(|r| r != room);
            if list.is_empty() {
                inner.extra.remove(&conn.id);
            }
        }
    }

    /// Queues a message for one connection; a full queue or byte budget closes it with 1013.
    pub fn send_to(&self, conn: &Conn, msg: Outbound) {
        let len = match &msg {
            Outbound::Text(t) => t.len(),
            Outbound::Close(..) => 0,
        };
        let queued = conn.queued_bytes.fetch_add(len, Ordering::Relaxed) + len;
        if queued > self.limits.max_backlog_bytes {
            conn.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            conn.force_close(1013);
            return;
        }
        if conn.tx.try_send(msg).is_err() {
            conn.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            conn.force_close(1013);
        }
    }

    /// Delivers one mapped event: each target connection once, filtered, then the close action.
    /// Returns how many connections it was queued for.
    pub fn dispatch(&self, d: &Dispatch) -> usize {
        let dispatched = Instant::now();
        if let Some(p) = &d.parties {
            self.reauthorize(p);
        }
        let mut delivered = 0;
        let targets: Vec<Arc<Conn>> = {
            let inner = self.read();
            let mut ids: Vec<u64> = Vec::new();
            if d.rooms.len() == 1 {
                if let Some(m) = inner.rooms.get(&d.rooms[0]) {
                    ids.extend(m.iter().copied());
                }
            } else {
                let mut seen = HashSet::new();
                for room in &d.rooms {
                    if let Some(m) = inner.rooms.get(room) {
                        ids.extend(m.iter().copied().filter(|id| seen.insert(*id)));
                    }
                }
            }
            live(&inner, Some(&ids))
        };
        if let (Some(event_type), Some(message)) = (d.event_type, &d.message) {
            let text = Arc::new(Shared {
                text: Utf8Bytes::from(message.clone()),
                dispatched,
                payment: OnceLock::new(),
            });
            for conn in &targets {
                if conn.accepts(event_type) {
                    self.send_to(conn, Outbound::Text(text.clone()));
                    delivered += 1;
                }
            }
        }
        match d.action {
            Some(Action::CloseSession { session_id, code }) => {
                let conns = {
                    let inner = self.read();
                    live(&inner, inner.by_session.get(&session_id))
                };
                for c in conns {
                    // Queued after the event so the client sees `session:revoked` first.
                    self.send_to(&c, Outbound::Close(code, close_reason(code)));
                }
            }
            Some(Action::CloseUser { user_id, code }) => {
                let conns = {
                    let inner = self.read();
                    live(&inner, inner.by_user.get(&user_id))
                };
                for c in conns {
                    c.force_close(code);
                }
            }
            None => {}
        }
        delivered
    }

    /// Graceful shutdown (websocket.md §10): refuse new upgrades, close everyone with 1001,
    /// wait up to `grace` for the close handshakes.
    pub async fn shutdown(&self, grace: Duration) {
        self.shutting_down.store(true, Ordering::Release);
        let all: Vec<Arc<Conn>> = self.read().conns.values().cloned().collect();
        for c in &all {
            c.force_close(1001);
        }
        let deadline = tokio::time::Instant::now() + grace;
        while self.open_connections() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The close reason text for a code (websocket.md §7).
pub fn close_reason(code: u16) -> &'static str {
    match code {
        1001 => "Server shutting down",
        1003 => "Binary frames are not supported",
        1008 => "Message rate exceeded",
        1009 => "Message too large",
        1011 => "Unexpected server error",
        1013 => "Client cannot keep up",
        4001 => "Session revoked",
        4002 => "Role changed; re-authentication required",
        4008 => "Too many connections",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(text: &str) -> Shared {
        Shared {
            text: Utf8Bytes::from(text.to_owned()),
            dispatched: Instant::now(),
            payment: OnceLock::new(),
        }
    }

    /// Every GraphQL subscription socket a payment event reaches gets the same parsed event:
    /// it is parsed once per message, not once per socket.
    #[test]
    fn a_payment_event_is_parsed_once_for_every_socket() {
        let message = shared(&crate::graphql::subscription::sample_payment_message());
        let (first, second) = (message.payment_event(), message.payment_event());
        let (Some(first), Some(second)) = (first, second) else {
            panic!("a payment event was not recognised");
        };
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(first.payment_id.as_str(), "p1");
        let login = shared(
            r#"{"type":"event","id":"e2","timestamp":"t","payload":{"eventType":"session:login","data":{}}}"#,
        );
        assert!(login.payment_event().is_none());
    }

    /// A departure removes the connection from its automatic rooms and from the rooms it
    /// joined (found from its own list, not by scanning every room), and leaves the others'.
    #[test]
    fn leaving_clears_only_the_connections_own_rooms() {
        let hub = Hub::new(WsLimits::default());
        let (a, _rx_a) = hub.register(Uuid::new_v4(), Uuid::new_v4(), Role::Customer);
        let (b, _rx_b) = hub.register(Uuid::new_v4(), Uuid::new_v4(), Role::Customer);
        hub.join(&a, "payment:1");
        hub.join(&a, "payment:2");
        hub.join(&a, &format!("user:{}", a.user_id));
        hub.join(&b, "payment:1");
        assert_eq!(
            hub.extra_rooms(&a),
            2,
            "an automatic room is not an extra one"
        );
        hub.leave(&a, "payment:2");
        assert_eq!(hub.extra_rooms(&a), 1);
        assert!(!hub.read().rooms.contains_key("payment:2"));

        hub.unregister(&a);
        let inner = hub.read();
        assert!(!inner.rooms.contains_key(&format!("user:{}", a.user_id)));
        assert!(inner.rooms["payment:1"].contains(&b.id));
        assert!(!inner.rooms["payment:1"].contains(&a.id));
        assert!(!inner.rooms["role:customer"].contains(&a.id));
        assert!(inner.rooms["broadcast"].contains(&b.id));
        assert!(!inner.extra.contains_key(&a.id));
        drop(inner);
        hub.unregister(&b);
        assert!(hub.read().rooms.is_empty());
    }

    /// A payment event that changes its parties takes the room away from the former party,
    /// extra-room count included.
    #[test]
    fn a_former_party_loses_the_payment_room_and_its_count() {
        let hub = Hub::new(WsLimits::default());
        let (sender, recipient, former) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let payment = Uuid::new_v4();
        let room = format!("payment:{payment}");
        let (gone, _rx) = hub.register(former, Uuid::new_v4(), Role::Customer);
        let (stays, _rx2) = hub.register(sender, Uuid::new_v4(), Role::Customer);
        hub.join(&gone, &room);
        hub.join(&stays, &room);
        hub.reauthorize(&Parties {
            payment,
            sender,
            recipient,
        });
        assert!(!hub.in_room(&gone, &room));
        assert_eq!(hub.extra_rooms(&gone), 0);
        assert!(hub.in_room(&stays, &room));
        assert_eq!(hub.extra_rooms(&stays), 1);
    }
}
