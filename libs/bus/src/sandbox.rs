//! An isolated RabbitMQ virtual host plus a fresh PostgreSQL database with the outbox and
//! processed_events tables, created for one test or bench run and removed when dropped, so runs
//! proceed in parallel without touching anyone else's queues. Does I/O: the broker's management
//! HTTP API (the equivalent of `rabbitmqctl add_vhost/set_permissions/delete_vhost/
//! close_connection`, ~1000x faster than starting the rabbitmqctl VM) and PostgreSQL.

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use sqlx::{Connection, PgConnection, PgPool, postgres::PgPoolOptions};
use uuid::Uuid;

/// The outbox DDL every producing service applies (data.md §7.1).
pub const OUTBOX_DDL: &str = include_str!("../migrations/outbox.sql");
/// The processed_events DDL every consuming service applies (data.md §7.2).
pub const PROCESSED_EVENTS_DDL: &str = include_str!("../migrations/processed_events.sql");

/// Where the servers are.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// An existing database to run `CREATE DATABASE` from.
    pub pg_admin_url: String,
    /// `host:port` of the broker's AMQP listener.
    pub amqp_addr: String,
    /// `host:port` of the broker's management API.
    pub management_addr: String,
    pub user: String,
    pub password: String,
    pub pool_size: u32,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            pg_admin_url: "postgres://postgres@127.0.0.1:5432/postgres".into(),
            amqp_addr: "127.0.0.1:5672".into(),
            management_addr: "127.0.0.1:15672".into(),
            user: "guest".into(),
            password: "guest".into(),
            pool_size: 8,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("broker management API {method} {path}: {detail}")]
    Management {
        method: &'static str,
        path: String,
        detail: String,
    },
    #[error("creating or preparing database {name}")]
    Database {
        name: String,
        #[source]
        source: sqlx::Error,
    },
}

/// A vhost and a database that exist until this value is dropped.
#[derive(Debug)]
pub struct Sandbox {
    pub name: String,
    pub vhost: String,
    /// AMQP URL of the vhost.
    pub amqp_url: String,
    pub database_url: String,
    pub pool: PgPool,
    config: SandboxConfig,
}

impl Sandbox {
    /// Creates `<prefix>_<random>` as vhost and database, with both DDL files applied.
    pub async fn create(prefix: &str) -> Result<Sandbox, SandboxError> {
        Sandbox::create_with(prefix, SandboxConfig::default()).await
    }

    pub async fn create_with(prefix: &str, config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let suffix = Uuid::new_v4().simple().to_string();
        let name = format!("{prefix}_{}", &suffix[..12]);
        let vhost = name.clone();
        if management_available(&config) {
            management(&config, "PUT", &format!("/api/vhosts/{vhost}"), "{}")?;
        } else {
            rabbitmqctl(&["add_vhost", &vhost])?;
        }
        let sandbox_cleanup_guard = VhostGuard(&config, &vhost);
        if management_available(&config) {
            management(
                &config,
                "PUT",
                &format!("/api/permissions/{vhost}/{}", config.user),
                r#"{"configure":".*","write":".*","read":".*"}"#,
            )?;
        } else {
            rabbitmqctl(&[
                "set_permissions",
                "-p",
                &vhost,
                &config.user,
                ".*",
                ".*",
                ".*",
            ])?;
        }
        let db_err = |source| SandboxError::Database {
            name: name.clone(),
            source,
        };
        let mut admin = PgConnection::connect(&config.pg_admin_url)
            .await
            .map_err(db_err)?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut admin)
            .await
            .map_err(db_err)?;
        let _ = admin.close().await;
        let database_url = match config.pg_admin_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => format!("{}/{name}", config.pg_admin_url),
        };
        let pool = PgPoolOptions::new()
            .max_connections(config.pool_size)
            .connect(&database_url)
            .await
            .map_err(db_err)?;
        sqlx::raw_sql(OUTBOX_DDL)
            .execute(&pool)
            .await
            .map_err(db_err)?;
        sqlx::raw_sql(PROCESSED_EVENTS_DDL)
            .execute(&pool)
            .await
            .map_err(db_err)?;
        std::mem::forget(sandbox_cleanup_guard);
        let amqp_url = format!(
            "amqp://{}:{}@{}/{vhost}",
            config.user, config.password, config.amqp_addr
        );
        Ok(Sandbox {
            name,
            vhost,
            amqp_url,
            database_url,
            pool,
            config,
        })
    }

    /// Forcibly closes every client connection of this vhost (and only of it), like
    /// `rabbitmqctl close_connection` for each pid of `list_connections vhost pid`. Returns how
    /// many were closed.
    pub fn close_broker_connections(&self) -> Result<usize, SandboxError> {
        let names = self.broker_connections()?;
        if !management_available(&self.config) {
            rabbitmqctl(&[
                "close_all_connections",
                "-p",
                &self.vhost,
                "closed by the sandbox",
            ])?;
            return Ok(names.len());
        }
        for name in &names {
            management(
                &self.config,
                "DELETE",
                &format!("/api/connections/{}", percent_encode(name)),
                "",
            )?;
        }
        Ok(names.len())
    }

    /// Names of this vhost's client connections. The management API lists a new connection
    /// only after its next statistics emission (up to 5 s).
    pub fn broker_connections(&self) -> Result<Vec<String>, SandboxError> {
        let listing = if management_available(&self.config) {
            management(
                &self.config,
                "GET",
                &format!("/api/vhosts/{}/connections", self.vhost),
                "",
            )?
        } else {
            rabbitmqctl(&[
                "list_connections",
                "-q",
                "--formatter",
                "json",
                "vhost",
                "name",
            ])?
        };
        let names: Vec<String> = serde_json::from_str::<serde_json::Value>(&listing)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter(|c| {
                c.get("vhost")
                    .and_then(|v| v.as_str())
                    .is_none_or(|v| v == self.vhost)
            })
            .filter_map(|c| c.get("name").and_then(|n| n.as_str()).map(str::to_owned))
            .collect();
        Ok(names)
    }

    /// Number of messages in `queue` of this vhost, as the management API reports it (its
    /// statistics lag by up to a few seconds).
    pub fn queue_depth(&self, queue: &str) -> Result<u64, SandboxError> {
        if !management_available(&self.config) {
            let listing = rabbitmqctl(&[
                "list_queues",
                "-p",
                &self.vhost,
                "-q",
                "--formatter",
                "json",
                "name",
                "messages",
            ])?;
            return Ok(serde_json::from_str::<serde_json::Value>(&listing)
                .ok()
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .find(|q| q.get("name").and_then(|n| n.as_str()) == Some(queue))
                .and_then(|q| q.get("messages").and_then(serde_json::Value::as_u64))
                .unwrap_or(0));
        }
        let body = management(
            &self.config,
            "GET",
            &format!("/api/queues/{}/{}", self.vhost, percent_encode(queue)),
            "",
        )?;
        Ok(serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("messages").and_then(serde_json::Value::as_u64))
            .unwrap_or(0))
    }
}

struct VhostGuard<'a>(&'a SandboxConfig, &'a str);

impl Drop for VhostGuard<'_> {
    fn drop(&mut self) {
        delete_vhost(self.0, self.1);
    }
}

fn delete_vhost(config: &SandboxConfig, vhost: &str) {
    if management_available(config) {
        let _ = management(config, "DELETE", &format!("/api/vhosts/{vhost}"), "");
    } else {
        let _ = rabbitmqctl(&["delete_vhost", vhost]);
    }
}

/// Whether the management plugin listens. Without it (a broker whose `enabled_plugins` lost
/// `rabbitmq_management`) the sandbox falls back to `rabbitmqctl`, which is slower (~0.5 s a
/// call) but does the same.
fn management_available(config: &SandboxConfig) -> bool {
    TcpStream::connect(&config.management_addr).is_ok()
}

/// Runs `rabbitmqctl <args>` on this machine; returns its standard output.
fn rabbitmqctl(args: &[&str]) -> Result<String, SandboxError> {
    let fail = |detail: String| SandboxError::Management {
        method: "rabbitmqctl",
        path: args.join(" "),
        detail,
    };
    let out = std::process::Command::new("rabbitmqctl")
        .args(args)
        .output()
        .map_err(|e| fail(e.to_string()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(fail(String::from_utf8_lossy(&out.stderr).into_owned()))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        delete_vhost(&self.config, &self.vhost);
        payplane_db::testing::drop_databases_blocking(
            self.config.pg_admin_url.clone(),
            vec![self.name.clone()],
            Duration::ZERO,
        );
    }
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One blocking HTTP/1.1 request to the management API (`Connection: close`); returns the body.
fn management(
    config: &SandboxConfig,
    method: &'static str,
    path: &str,
    body: &str,
) -> Result<String, SandboxError> {
    let fail = |detail: String| SandboxError::Management {
        method,
        path: path.to_owned(),
        detail,
    };
    let mut stream =
        TcpStream::connect(&config.management_addr).map_err(|e| fail(e.to_string()))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let auth = base64(format!("{}:{}", config.user, config.password).as_bytes());
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        config.management_addr,
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| fail(e.to_string()))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| fail(e.to_string()))?;
    let text = String::from_utf8_lossy(&response);
    let status: u16 = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| fail("no HTTP status".into()))?;
    let (head, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let payload = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(payload)
    } else {
        payload.to_owned()
    };
    if (200..300).contains(&status) {
        Ok(payload)
    } else {
        Err(fail(format!("HTTP {status}: {payload}")))
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes() {
        assert_eq!(base64(b"guest:guest"), "Z3Vlc3Q6Z3Vlc3Q=");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(
            percent_encode("127.0.0.1:1 -> x"),
            "127.0.0.1%3A1%20-%3E%20x"
        );
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }
}
