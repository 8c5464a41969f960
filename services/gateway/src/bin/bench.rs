//! `payplane-gateway-bench`: measures the gateway.
//!
//! * `proxy [--duration S] [--connections N] [--workers W] [--no-callgrind]` — a trivial
//!   upstream (own process) measured with wrk (a) directly, (b) through the gateway (own
//!   process), (c) through nginx (2 workers, keep-alive upstream, started here on loopback);
//!   then the instructions one proxied request costs the gateway and nginx, counted by
//!   callgrind (repeatable on a busy machine). Last line:
//!   `gateway: <n> rps p99 <x> ms ratio <r> of nginx, <i> instr/req vs nginx <j>`. Before it, the overhead on a real
//!   endpoint: the real auth service (own process, throwaway database) answering
//!   `GET /api/auth/me` with a bearer token, measured directly and through the gateway at the
//!   same concurrency (`real endpoint GET /api/auth/me: gateway <n> rps vs direct <m> rps ratio <r>`).
//! * `ws [--sockets N] [--procs P] [--workers W] [--graphql]` — one gateway process (`GATEWAY_WORKERS=W`),
//!   N authenticated sockets opened by P load-generator processes (this binary re-executed)
//!   over 127.0.0.x source addresses, one event published to RabbitMQ addressed to all, fan-out
//!   latency as the sockets saw it and gateway RSS per socket; before the last line, the
//!   gateway's own dispatch-to-last-write time and the CPU each side spent on the fan-out.
//!   Last line: `ws: <n> sockets fanout p99 <x> ms <y> KiB/socket`. With `--graphql`, the
//!   sockets are GraphQL subscriptions (`paymentUpdated` over graphql-transport-ws on
//!   `/graphql`) and the last line starts `graphql-ws:`.
//!
//! * `instr [--workers W]` — only the callgrind count of `proxy` (a minute, whatever the
//!   machine's load): the loop for trying a hot-path change. `W` defaults to 1 (one
//!   multi-threaded runtime, the service's default); `proxy` counts with its own `--workers`.
//!   Last line: `instr/req: gateway <i> nginx <j> (<r>x)`.
//!
//! Internal modes used by the above: `serve-upstream`, `serve-auth`, `serve-gateway`,
//! `ws-clients`.

use std::{
    io::{BufRead, BufReader, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context, bail};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use futures::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use payplane_authn::{
    AUDIENCE, AccessClaims,
    jwks::{Jwk, JwkSet},
};
use payplane_events::auth::Role;
use payplane_kit::service::Service as _;
use serde_json::json;
use tokio_tungstenite::{WebSocketStream, tungstenite::protocol::WebSocketConfig};

/// mimalloc instead of glibc malloc: malloc/free were a fifth of the instructions of a proxied
/// request; see the README's gateway section for the measured difference.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn arg_str(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// What the first argument may be: the benches, then the processes they start.
const MODES: [&str; 7] = [
    "proxy",
    "instr",
    "ws",
    "serve-upstream",
    "serve-gateway",
    "serve-auth",
    "ws-clients",
];

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map_or("proxy", String::as_str);
    let rest = args.get(1..).unwrap_or_default().to_vec();
    if !MODES.contains(&mode) {
        // A usage mistake, not a failure worth a backtrace.
        eprintln!(
            "payplane-gateway-bench: unknown mode {mode:?}; use one of {}",
            MODES.join(", ")
        );
        std::process::exit(2);
    }
    let workers: usize = arg(&rest, "--workers", 1);
    // `serve-gateway --workers N` runs like `GATEWAY_WORKERS=N payplane-gateway`.
    let serving_workers = if mode == "serve-gateway" { workers } else { 1 };
    // Built by the modes that run async code, so `ws-clients` runs on its own one-thread
    // runtime without an idle multi-threaded one beside it.
    let rt = || payplane_gateway::app::main_runtime(serving_workers, false);
    if mode == "proxy" {
        require_tools(&["nginx", "wrk", "valgrind"]);
    }
    if mode == "instr" {
        require_tools(&["nginx", "valgrind"]);
    }
    match mode {
        "proxy" => proxy(&rest),
        "instr" => instr(&rest),
        "ws" => rt()?.block_on(ws(&rest)),
        "serve-upstream" => rt()?.block_on(serve_upstream(&rest)),
        "serve-gateway" => rt()?.block_on(serve_gateway(&rest)),
        "serve-auth" => rt()?.block_on(serve_auth()),
        // One thread: see `ws_clients`.
        "ws-clients" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(ws_clients(&rest)),
        other => bail!("unknown mode {other:?}"),
    }
}

/// A child process that prints `listening <addr>` first.
struct Server {
    child: Child,
    addr: SocketAddr,
    out: BufReader<std::process::ChildStdout>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_self(args: &[&str]) -> anyhow::Result<Server> {
    spawn_self_under(&[], args)
}

/// Like [`spawn_self`], with the program run under `wrapper` (e.g. valgrind and its options).
fn spawn_self_under(wrapper: &[String], args: &[&str]) -> anyhow::Result<Server> {
    let exe = std::env::current_exe()?;
    let mut cmd = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    let mut child = cmd
        .args(args)
        .stdout(Stdio::piped())
        .stdin(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().context("child stdout")?;
    let mut out = BufReader::new(stdout);
    let mut line = String::new();
    out.read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .and_then(|a| a.parse().ok())
        .with_context(|| format!("child said {line:?}"))?;
    Ok(Server { child, addr, out })
}

async fn serve_upstream(_args: &[String]) -> anyhow::Result<()> {
    let app = axum::Router::new().route(
        "/api/payments/ping",
        axum::routing::get(|| async {
            (
                [("content-type", "application/json")],
                r#"{"success":true,"data":{"pong":true}}"#,
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

async fn serve_gateway(args: &[String]) -> anyhow::Result<()> {
    let mut config = payplane_gateway::Config::for_tests();
    if let Some(up) = arg_str(args, "--upstream") {
        config = config.with_upstream("payments", &up);
    }
    if let Some(up) = arg_str(args, "--auth") {
        config = config.with_upstream("auth", &up);
    }
    config.jwks_file = arg_str(args, "--jwks").map(PathBuf::from);
    let amqp = arg_str(args, "--amqp");
    if let Some(amqp) = &amqp {
        config.events_enabled = true;
        config.amqp_url.clone_from(amqp);
    }
    config.ws.max_per_user = 10;
    config.workers = arg(args, "--workers", 1);
    let app = payplane_gateway::Application::build(config).await?;
    let addr = app.local_addr().context("no address")?;
    if amqp.is_some() {
        let bridge = app.state().bridge.clone();
        // Tell the parent once the event bridge is consuming (ws mode) so no event is lost.
        // Only then: without a broker the loop would wake every 20 ms for ever, which under
        // callgrind adds instructions in proportion to the run's wall time.
        tokio::spawn(async move {
            while !bridge.connected() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            println!("bridge");
        });
    }
    println!("listening {addr}");
    app.run_until_stopped().await?;
    Ok(())
}

/// The real auth service (throwaway database, cheap argon2) with one registered user; prints
/// `listening <addr>` then `token <access token>` and serves until killed.
async fn serve_auth() -> anyhow::Result<()> {
    let auth = payplane_auth::testing::TestApp::spawn().await?;
    let email = format!("bench{}@example.com", uuid::Uuid::new_v4().simple());
    let res = reqwest::Client::new()
        .post(auth.url("/api/auth/register"))
        .json(&json!({ "email": email, "password": "Correct-Horse-9", "name": "Bench User", "deviceId": "bench" }))
        .send()
        .await?;
    let status = res.status();
    let body: serde_json::Value = res.json().await?;
    let token = body["data"]["accessToken"]
        .as_str()
        .with_context(|| format!("register answered {status}: {body}"))?;
    println!("listening {}", auth.addr);
    println!("token {token}");
    let _ = std::io::stdout().flush();
    // Serve until the parent closes our stdin, then stop so the throwaway database is dropped
    // (a kill would leave it behind).
    let _ =
        tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
            .await;
    auth.stop().await;
    Ok(())
}

/// The proxy bench compares against nginx with wrk as the load generator; without them it
/// says what to install, on one line, and exits with 2 (not a backtrace).
fn require_tools(tools: &[&str]) {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            !std::env::var_os("PATH").is_some_and(|paths| {
                std::env::split_paths(&paths).any(|dir| dir.join(t).is_file())
                    || Path::new("/usr/sbin").join(t).is_file()
            })
        })
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "gateway bench needs {}: apt-get install -y {}",
            missing.join(" and "),
            missing.join(" ")
        );
        std::process::exit(2);
    }
}

/// wrk's requests/s and p50/p99 in ms.
struct Figures {
    rps: f64,
    p50: f64,
    p99: f64,
}

fn wrk_ms(text: &str) -> Option<f64> {
    let t = text.trim();
    if let Some(v) = t.strip_suffix("us") {
        return v.parse::<f64>().ok().map(|v| v / 1000.0);
    }
    if let Some(v) = t.strip_suffix("ms") {
        return v.parse().ok();
    }
    t.strip_suffix('s')
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v * 1000.0)
}

fn wrk(url: &str, duration: u64, connections: u32) -> anyhow::Result<Figures> {
    wrk_with(url, duration, connections, None)
}

fn wrk_with(
    url: &str,
    duration: u64,
    connections: u32,
    header: Option<&str>,
) -> anyhow::Result<Figures> {
    let mut cmd = Command::new("wrk");
    cmd.args([
        "-t2",
        &format!("-c{connections}"),
        &format!("-d{duration}s"),
        "--latency",
    ]);
    if let Some(h) = header {
        cmd.args(["-H", h]);
    }
    let out = cmd
        .arg(url)
        .output()
        .context("running wrk (apt-get install -y wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let find = |prefix: &str| {
        text.lines().find_map(|l| {
            l.trim()
                .strip_prefix(prefix)
                .map(str::trim)
                .map(str::to_owned)
        })
    };
    let rps = find("Requests/sec:").and_then(|v| v.parse().ok());
    let p50 = find("50%").and_then(|v| wrk_ms(&v));
    let p99 = find("99%").and_then(|v| wrk_ms(&v));
    let non2xx = find("Non-2xx or 3xx responses:");
    if let Some(n) = non2xx {
        bail!("{url}: {n} non-2xx responses\n{text}");
    }
    match (rps, p50, p99) {
        (Some(rps), Some(p50), Some(p99)) => Ok(Figures { rps, p50, p99 }),
        _ => bail!("could not parse wrk output:\n{text}"),
    }
}

fn start_nginx(dir: &Path, upstream: SocketAddr) -> anyhow::Result<(Child, SocketAddr)> {
    start_nginx_under(&[], dir, upstream)
}

/// nginx as in [`start_nginx`]; with a `wrapper` (valgrind) it runs as one process
/// (`master_process off`), so the one process measured is the one that proxies.
fn start_nginx_under(
    wrapper: &[String],
    dir: &Path,
    upstream: SocketAddr,
) -> anyhow::Result<(Child, SocketAddr)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let conf = format!(
        "worker_processes 2;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log warn;\nevents {{ worker_connections 4096; }}\n\
         http {{\n  access_log off;\n  keepalive_requests 1000000;\n  client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n  fastcgi_temp_path {dir}/fcgi;\n  uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n\
         upstream up {{ server {upstream}; keepalive 128; }}\n\
         server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\"; }} }}\n}}\n",
        dir = dir.display()
    );
    std::fs::create_dir_all(dir)?;
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf)?;
    let mut cmd = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg("nginx");
            c
        }
        None => Command::new("nginx"),
    };
    let globals = if wrapper.is_empty() {
        "daemon off;"
    } else {
        "daemon off; master_process off;"
    };
    let child = cmd
        .args([
            "-p",
            &dir.display().to_string(),
            "-c",
            &path.display().to_string(),
            "-g",
            globals,
        ])
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting nginx (apt-get install -y nginx)")?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        if Instant::now() > deadline {
            bail!("nginx did not start; see {}/error.log", dir.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((child, addr))
}

fn proxy(args: &[String]) -> anyhow::Result<()> {
    let duration: u64 = arg(args, "--duration", 10);
    let connections: u32 = arg(args, "--connections", 64);
    // Like nginx's `worker_processes 2`: one single-threaded runtime per core by default;
    // `--workers 1` measures the one multi-threaded runtime instead.
    let workers: usize = arg(args, "--workers", 2);
    let workers_arg = workers.to_string();
    let upstream = spawn_self(&["serve-upstream"])?;
    let gateway = spawn_self(&[
        "serve-gateway",
        "--workers",
        &workers_arg,
        "--upstream",
        &format!("http://{}", upstream.addr),
    ])?;
    let dir = std::env::temp_dir().join(format!("payplane-gw-bench-{}", std::process::id()));
    let (mut nginx, nginx_addr) = start_nginx(&dir, upstream.addr)?;
    let path = "/api/payments/ping";
    let targets = [
        ("direct", upstream.addr),
        ("gateway", gateway.addr),
        ("nginx", nginx_addr),
    ];
    println!(
        "trivial upstream GET {path}, wrk -t2 -c{connections} -d{duration}s, each after a 2 s warm-up; gateway workers: {workers}"
    );
    let mut results = Vec::new();
    for (name, addr) in targets {
        let url = format!("http://{addr}{path}");
        let _ = wrk(&url, 2, connections);
        let f = wrk(&url, duration, connections)?;
        println!(
            "{name:>8}: {:>9.0} rps  p50 {:>6.2} ms  p99 {:>6.2} ms",
            f.rps, f.p50, f.p99
        );
        results.push(f);
    }
    // A graceful stop takes the workers down with the master (a SIGKILL would orphan them).
    let _ = Command::new("nginx")
        .args([
            "-p",
            &dir.display().to_string(),
            "-c",
            &dir.join("nginx.conf").display().to_string(),
            "-s",
            "stop",
        ])
        .status();
    if tokio_free_wait(&mut nginx, Duration::from_secs(5)).is_none() {
        let _ = nginx.kill();
        let _ = nginx.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
    drop(gateway);
    let real = real_endpoint(duration, connections, &workers_arg)?;
    let (gw_instr, nginx_instr) = if args.iter().any(|a| a == "--no-callgrind") {
        (f64::NAN, f64::NAN)
    } else {
        // Counted in the same worker model the rps above were measured in.
        let gw = instructions_per_request(Proxy::Gateway(workers), upstream.addr, path)?;
        let ngx = instructions_per_request(Proxy::Nginx, upstream.addr, path)?;
        println!(
            "instructions per proxied request (callgrind, {CALLGRIND_SMALL} vs {CALLGRIND_LARGE} sequential keep-alive GETs): gateway {gw:.0}, nginx {ngx:.0} ({:.2}x)",
            gw / ngx
        );
        (gw, ngx)
    };
    let (gw, ngx) = (&results[1], &results[2]);
    println!("{real}");
    println!(
        "gateway: {:.0} rps p99 {:.2} ms ratio {:.2} of nginx, {gw_instr:.0} instr/req vs nginx {nginx_instr:.0}",
        gw.rps,
        gw.p99,
        gw.rps / ngx.rps
    );
    Ok(())
}

fn instr(args: &[String]) -> anyhow::Result<()> {
    let workers: usize = arg(args, "--workers", 1);
    let upstream = spawn_self(&["serve-upstream"])?;
    let path = "/api/payments/ping";
    let gw = instructions_per_request(Proxy::Gateway(workers), upstream.addr, path)?;
    let ngx = instructions_per_request(Proxy::Nginx, upstream.addr, path)?;
    println!(
        "instr/req: gateway {gw:.0} nginx {ngx:.0} ({:.2}x)",
        gw / ngx
    );
    Ok(())
}

/// Requests of the two callgrind runs; their difference is what is counted.
const CALLGRIND_SMALL: usize = 200;
const CALLGRIND_LARGE: usize = 2_200;

#[derive(Clone, Copy)]
enum Proxy {
    /// With this many `GATEWAY_WORKERS`.
    Gateway(usize),
    Nginx,
}

/// Instructions one proxied request costs the proxy, counted by callgrind (deterministic,
/// whatever else the machine runs): the proxy runs under `valgrind --tool=callgrind` twice,
/// serving [`CALLGRIND_SMALL`] and then [`CALLGRIND_LARGE`] sequential keep-alive requests;
/// the difference of the totals divided by the difference of the counts leaves out start-up
/// (for the gateway ~32 M instructions decoding the CA bundle alone) and shutdown.
fn instructions_per_request(proxy: Proxy, upstream: SocketAddr, path: &str) -> anyhow::Result<f64> {
    let mut totals = Vec::new();
    for n in [CALLGRIND_SMALL, CALLGRIND_LARGE] {
        let dir =
            std::env::temp_dir().join(format!("payplane-gw-callgrind-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let out = dir.join("callgrind.out");
        let wrapper: Vec<String> = vec![
            "valgrind".into(),
            "--tool=callgrind".into(),
            format!("--callgrind-out-file={}", out.display()),
        ];
        let total = match proxy {
            Proxy::Gateway(workers) => {
                let mut gw = spawn_self_under(
                    &wrapper,
                    &[
                        "serve-gateway",
                        "--workers",
                        &workers.to_string(),
                        "--upstream",
                        &format!("http://{upstream}"),
                    ],
                )?;
                sequential_gets(gw.addr, path, n)?;
                terminate(&mut gw.child)?;
                callgrind_total(&out)?
            }
            Proxy::Nginx => {
                let (mut nginx, addr) = start_nginx_under(&wrapper, &dir.join("nginx"), upstream)?;
                if let Err(e) = sequential_gets(addr, path, n) {
                    // Not left running under valgrind when the count fails.
                    let _ = nginx.kill();
                    let _ = nginx.wait();
                    return Err(e);
                }
                terminate(&mut nginx)?;
                callgrind_total(&out)?
            }
        };
        let _ = std::fs::remove_dir_all(&dir);
        totals.push(total);
    }
    #[expect(
        clippy::cast_precision_loss,
        reason = "instruction counts fit f64 exactly enough"
    )]
    let per =
        (totals[1].saturating_sub(totals[0])) as f64 / (CALLGRIND_LARGE - CALLGRIND_SMALL) as f64;
    Ok(per)
}

/// `n` GETs one after another on one keep-alive connection, each answer read completely.
fn sequential_gets(addr: SocketAddr, path: &str, n: usize) -> anyhow::Result<()> {
    use std::io::Read;
    let mut conn = std::net::TcpStream::connect(addr)?;
    conn.set_nodelay(true)?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n");
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0_u8; 4096];
    for _ in 0..n {
        conn.write_all(request.as_bytes())?;
        buf.clear();
        // Headers, then exactly Content-Length bytes of body.
        let (head_end, length) = loop {
            let read = conn.read(&mut chunk)?;
            if read == 0 {
                bail!("the proxy closed the connection");
            }
            buf.extend_from_slice(&chunk[..read]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .context("answer without Content-Length")?;
                break (end + 4, length);
            }
        };
        while buf.len() < head_end + length {
            let read = conn.read(&mut chunk)?;
            if read == 0 {
                bail!("the proxy closed the connection mid-body");
            }
            buf.extend_from_slice(&chunk[..read]);
        }
    }
    Ok(())
}

/// SIGTERM (both the gateway and nginx exit cleanly on it, so callgrind writes its totals),
/// then waits for the exit.
fn terminate(child: &mut Child) -> anyhow::Result<()> {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    if tokio_free_wait(child, Duration::from_secs(60)).is_none() {
        let _ = child.kill();
        bail!("the measured process did not exit on SIGTERM");
    }
    Ok(())
}

/// The `totals:` (or `summary:`) line of a callgrind output file: instructions executed.
fn callgrind_total(file: &Path) -> anyhow::Result<u64> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no totals in the callgrind output")
}

/// The gateway's overhead on a real endpoint: auth's `GET /api/auth/me` (bearer token
/// verified, user read from PostgreSQL) directly vs through a gateway in front of it, same wrk
/// settings. Returns the summary line.
fn real_endpoint(duration: u64, connections: u32, workers: &str) -> anyhow::Result<String> {
    let mut auth = spawn_self(&["serve-auth"])?;
    let mut line = String::new();
    auth.out.read_line(&mut line)?;
    let token = line
        .trim()
        .strip_prefix("token ")
        .with_context(|| format!("auth said {line:?}"))?
        .to_owned();
    let gateway = spawn_self(&[
        "serve-gateway",
        "--workers",
        workers,
        "--auth",
        &format!("http://{}", auth.addr),
    ])?;
    let path = "/api/auth/me";
    let header = format!("Authorization: Bearer {token}");
    println!(
        "real endpoint GET {path} (auth service + PostgreSQL), wrk -t2 -c{connections} -d{duration}s"
    );
    let mut figures = Vec::new();
    for (name, addr) in [("direct", auth.addr), ("gateway", gateway.addr)] {
        let url = format!("http://{addr}{path}");
        let _ = wrk_with(&url, 2, connections, Some(&header));
        let f = wrk_with(&url, duration, connections, Some(&header))?;
        println!(
            "{name:>8}: {:>9.0} rps  p50 {:>6.2} ms  p99 {:>6.2} ms",
            f.rps, f.p50, f.p99
        );
        figures.push(f);
    }
    drop(gateway);
    drop(auth.child.stdin.take());
    let _ = tokio_free_wait(&mut auth.child, Duration::from_secs(10));
    let (direct, gw) = (&figures[0], &figures[1]);
    Ok(format!(
        "real endpoint GET {path}: gateway {:.0} rps p99 {:.2} ms vs direct {:.0} rps p99 {:.2} ms ratio {:.2} of direct",
        gw.rps,
        gw.p99,
        direct.rps,
        direct.p99,
        gw.rps / direct.rps
    ))
}

/// Waits for a child to exit, at most `limit`.
fn tokio_free_wait(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn mint(key: &EncodingKey, kid: &str, user: uuid::Uuid) -> anyhow::Result<String> {
    let now = chrono::Utc::now().timestamp();
    let claims = AccessClaims {
        iss: "payplane".into(),
        aud: AUDIENCE.into(),
        sub: user,
        user_id: user,
        email: format!("{user}@bench.example"),
        name: "Bench".into(),
        role: Role::Admin,
        sid: uuid::Uuid::new_v4(),
        ver: 1,
        jti: uuid::Uuid::new_v4(),
        iat: now,
        exp: now + 3600,
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    Ok(jsonwebtoken::encode(&header, &claims, key)?)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// CPU time a process has run so far, all its threads, in nanoseconds (from the scheduler's
/// own accounting, finer than the 10 ms ticks of `/proc/<pid>/stat`).
fn cpu_ns(pid: &str) -> u64 {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// User and kernel CPU of a process so far, in the 10 ms ticks of `/proc/<pid>/stat` (coarse,
/// but the only split of where a socket write's time goes: our code or the kernel's TCP).
fn user_system_ticks(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the `(comm)`, which may itself contain spaces: state is the 3rd field, so
    // utime (14th) and stime (15th) are the 12th and 13th after it.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let mut fields = after.split_whitespace().skip(11);
    let mut next = || fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
    (next(), next())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    payplane_kit::bench::percentile(sorted, p).unwrap_or(f64::NAN)
}

fn now_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros())
}

#[expect(
    clippy::too_many_lines,
    reason = "a bench reads as one procedure: set up, load, measure, report"
)]
async fn ws(args: &[String]) -> anyhow::Result<()> {
    let sockets: usize = arg(args, "--sockets", 19_000);
    let procs: usize = arg(args, "--procs", 2).max(1);
    let workers: usize = arg(args, "--workers", 1);
    // `--graphql`: the same fan-out to GraphQL `paymentUpdated` subscriptions on `/graphql`.
    let graphql = args.iter().any(|a| a == "--graphql");
    let path = if graphql { "graphql" } else { "ws" };
    let dir = std::env::temp_dir().join(format!("payplane-ws-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // A signing key the gateway trusts through a JWKS file (no auth service needed).
    let pair = Ed25519KeyPair::generate().map_err(|_| anyhow::anyhow!("key generation"))?;
    let pkcs8 = pair.to_pkcs8v1().map_err(|_| anyhow::anyhow!("pkcs8"))?;
    let kid = "bench";
    let jwks = JwkSet {
        keys: vec![Jwk::ed25519(
            kid,
            &URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        )],
    };
    let jwks_path = dir.join("jwks.json");
    std::fs::write(&jwks_path, serde_json::to_vec(&jwks)?)?;
    let key_path = dir.join("key.der");
    std::fs::write(&key_path, pkcs8.as_ref())?;

    let sandbox = payplane_bus::sandbox::Sandbox::create("gw_wsbench").await?;
    markers_ready().await?;
    let mut gateway = spawn_self(&[
        "serve-gateway",
        "--jwks",
        &jwks_path.display().to_string(),
        "--amqp",
        &sandbox.amqp_url,
        "--workers",
        &workers.to_string(),
    ])?;
    let gw_pid = gateway.child.id();
    let mut line = String::new();
    gateway.out.read_line(&mut line)?;
    anyhow::ensure!(line.trim() == "bridge", "gateway said {line:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let base_rss = rss_kib(gw_pid);

    let per = sockets.div_ceil(procs);
    let mut clients = Vec::new();
    let exe = std::env::current_exe()?;
    for p in 0..procs {
        let count = per.min(sockets - per * p);
        if count == 0 {
            break;
        }
        let child = Command::new(&exe)
            .args([
                "ws-clients",
                "--url",
                &format!("ws://{}/{path}", gateway.addr),
                "--count",
                &count.to_string(),
                "--key",
                &key_path.display().to_string(),
                "--kid",
                kid,
                "--source",
                &(p * 40 + 2).to_string(),
            ])
            .stdout(Stdio::piped())
            .stdin(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        clients.push(child);
    }
    let started = Instant::now();
    let mut readers = Vec::new();
    let mut opened = 0usize;
    for c in &mut clients {
        let mut r = BufReader::new(c.stdout.take().context("client stdout")?);
        let mut l = String::new();
        r.read_line(&mut l)?;
        opened += l
            .trim()
            .strip_prefix("ready ")
            .and_then(|n| n.parse::<usize>().ok())
            .with_context(|| format!("client said {l:?}"))?;
        readers.push(r);
    }
    let open_secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        opened > 0,
        "no socket opened (the load generator said why above)"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss = rss_kib(gw_pid);
    #[expect(clippy::cast_precision_loss, reason = "a ratio for display")]
    let per_socket = rss.saturating_sub(base_rss) as f64 / opened.max(1) as f64;
    println!(
        "opened {opened} sockets in {open_secs:.1} s; gateway RSS {base_rss} KiB idle, {rss} KiB with sockets"
    );

    // One payment event addressed to role:admin, which every bench socket is in.
    let conn = payplane_bus::conn::connect(&sandbox.amqp_url, "ws-bench").await?;
    let ch = conn.create_channel().await?;
    let user = uuid::Uuid::new_v4();
    let body = json!({
        "id": uuid::Uuid::new_v4(), "type": "payments.payment.completed", "version": "1",
        "timestamp": payplane_events::time::format(&chrono::Utc::now()), "source": "payments",
        "correlationId": "bench",
        "data": { "paymentId": uuid::Uuid::new_v4(), "senderId": user, "recipientId": user,
                  "amount": "25.00", "currency": "USD", "type": "instant", "status": "completed", "previousStatus": "processing" }
    });
    let gateway_cpu = cpu_ns(&gw_pid.to_string());
    let gateway_split = user_system_ticks(gw_pid);
    let sent_at = now_micros();
    ch.basic_publish(
        "events".into(),
        "payments.payment.completed".into(),
        lapin::options::BasicPublishOptions::default(),
        &serde_json::to_vec(&body)?,
        lapin::BasicProperties::default(),
    )
    .await?
    .await?;
    let mut latencies = Vec::with_capacity(opened);
    let (mut clients_cpu, mut clients_user, mut clients_system) = (0, 0, 0);
    for (c, r) in clients.iter_mut().zip(readers.iter_mut()) {
        if let Some(stdin) = c.stdin.as_mut() {
            let _ = writeln!(stdin, "go");
        }
        for l in r.lines() {
            let l = l?;
            if let Some(end) = l.strip_prefix("end ") {
                let mut n = end.split(' ').map(|v| v.parse::<u64>().unwrap_or(0));
                clients_cpu += n.next().unwrap_or(0);
                clients_user += n.next().unwrap_or(0);
                clients_system += n.next().unwrap_or(0);
                break;
            }
            if let Ok(at) = l.parse::<u128>() {
                #[expect(clippy::cast_precision_loss, reason = "microseconds to milliseconds")]
                latencies.push(at.saturating_sub(sent_at) as f64 / 1000.0);
            }
        }
    }
    // Every socket is still open: a client's departure (9 500 unregistrations) must not land in
    // the fan-out's CPU or, while another client is still being written to, in its latency.
    let gateway_cpu = cpu_ns(&gw_pid.to_string()).saturating_sub(gateway_cpu);
    let (user, system) = user_system_ticks(gw_pid);
    let gateway_split = (
        user.saturating_sub(gateway_split.0),
        system.saturating_sub(gateway_split.1),
    );
    for c in &mut clients {
        drop(c.stdin.take());
        let _ = c.wait();
    }
    let _ = conn.close(200, "done".into()).await;
    latencies.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
    println!(
        "event received by {} of {opened} sockets; fan-out p50 {p50:.1} ms p99 {p99:.1} ms",
        latencies.len()
    );
    // The server's own view, free of the load generator's delays: from the event's dispatch
    // to its last socket write (`ws_fanout_seconds`, one event so the sum is its duration),
    // and the CPU each side spent on the fan-out (both share this machine's cores).
    let written = fanout_seconds(gateway.addr).await.unwrap_or(f64::NAN) * 1000.0;
    #[expect(clippy::cast_precision_loss, reason = "nanoseconds to milliseconds")]
    let (gw_ms, cl_ms) = (gateway_cpu as f64 / 1e6, clients_cpu as f64 / 1e6);
    println!(
        "gateway: dispatch to last write {written:.1} ms; CPU for the fan-out: gateway {gw_ms:.0} ms (user {} ms, kernel {} ms), load generator {cl_ms:.0} ms (user {} ms, kernel {} ms)",
        gateway_split.0 * 10,
        gateway_split.1 * 10,
        clients_user * 10,
        clients_system * 10
    );
    let _ = gateway.child.kill();
    let _ = gateway.child.wait();
    drop(sandbox);
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "{}: {} sockets fanout p99 {p99:.1} ms {per_socket:.1} KiB/socket",
        if graphql { "graphql-ws" } else { "ws" },
        latencies.len()
    );
    Ok(())
}

/// The gateway refuses every token (503) until auth has rebuilt the revocation markers in
/// Redis and set `auth:markers:ready` (fail-closed; see `payplane_authn::revocation`). Here no
/// auth runs and the bench signs its own tokens, none revoked, so it sets the key as auth
/// would — only if absent, so a real auth sharing this Redis keeps its own say.
async fn markers_ready() -> anyhow::Result<()> {
    // The same Redis `Config::for_tests` gives the gateway it starts.
    let url = std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut conn = redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection()
        .await
        .with_context(|| format!("Redis at {url} (start it with `.ci/setup`)"))?;
    let _: bool =
        redis::AsyncCommands::set_nx(&mut conn, payplane_authn::revocation::MARKERS_READY_KEY, 1)
            .await?;
    Ok(())
}

/// `ws_fanout_seconds_sum` from the gateway's `/metrics`.
async fn fanout_seconds(gateway: SocketAddr) -> Option<f64> {
    let text = reqwest::get(format!("http://{gateway}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("ws_fanout_seconds_sum "))
        .and_then(|v| v.trim().parse().ok())
}

/// Load generator: opens `--count` sockets spread over 40 source addresses from
/// 127.0.0.<source>, prints `ready <n>`, waits for one event on each, prints receive times, then
/// `end <CPU ns> <user ticks> <kernel ticks>` spent since ready, and keeps the sockets open
/// until its stdin closes.
///
/// It shares the machine's cores with the gateway it measures, so every microsecond it spends
/// per event is one the fan-out waits for: it runs on one thread (`main` gives it a
/// current-thread runtime; no wake-ups across workers) and each socket's task hands its receive
/// time back as its result instead of sending it to a collector task (19 000 wake-ups fewer).
async fn ws_clients(args: &[String]) -> anyhow::Result<()> {
    let url: String = arg_str(args, "--url").context("--url")?;
    let count: usize = arg(args, "--count", 1000);
    let source: u8 = arg(args, "--source", 2);
    let der = std::fs::read(arg_str(args, "--key").context("--key")?)?;
    let kid = arg_str(args, "--kid").context("--kid")?;
    let key = EncodingKey::from_ed_der(&der);
    let graphql = url.ends_with("/graphql");
    let target: SocketAddr = url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .trim_end_matches("/graphql")
        .parse()?;
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    let mut opens = Vec::with_capacity(count);
    for i in 0..count {
        let token = mint(&key, &kid, uuid::Uuid::new_v4())?;
        #[expect(clippy::cast_possible_truncation, reason = "i % 40 fits a byte")]
        let ip = IpAddr::V4(Ipv4Addr::new(
            127,
            0,
            0,
            source.wrapping_add((i % 40) as u8),
        ));
        let socket = if graphql {
            Socket::Graphql {
                url: url.clone(),
                token,
            }
        } else {
            Socket::Ws(format!("{url}?token={token}"))
        };
        opens.push(tokio::spawn(open_socket(socket, target, ip, sem.clone())));
    }
    let mut readers = Vec::new();
    let mut failed = 0usize;
    for o in opens {
        match o.await {
            Ok(Ok(h)) => readers.push(h),
            // A socket that did not open is reported once (with why), not silently dropped.
            Ok(Err(e)) => {
                if failed == 0 {
                    eprintln!("ws-clients: a socket did not open: {e:#}");
                }
                failed += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    if failed > 0 {
        eprintln!("ws-clients: {failed} of {count} sockets did not open");
    }
    println!("ready {}", readers.len());
    let _ = std::io::stdout().flush();
    // Idle from here until the event: what it costs to receive it is the CPU spent until `end`.
    let cpu_at_ready = cpu_ns("self");
    let ticks_at_ready = user_system_ticks(std::process::id());
    let mut stdin = BufReader::new(std::io::stdin());
    let mut l = String::new();
    let Ok((mut stdin, _)) = tokio::task::spawn_blocking(move || {
        let n = stdin.read_line(&mut l);
        (stdin, n)
    })
    .await
    else {
        return Ok(());
    };
    // Receive times are kept in memory and reported once every socket has its event: a line
    // written to the parent per event would put 19 000 pipe writes (and the parent's reads) on
    // the cores the fan-out is measured on.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut received = Vec::with_capacity(readers.len());
    let mut open = Vec::with_capacity(readers.len());
    for r in readers {
        match tokio::time::timeout_at(deadline, r).await {
            Ok(Ok(Some((at, ws)))) => {
                received.push(at);
                open.push(ws);
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let cpu = cpu_ns("self").saturating_sub(cpu_at_ready);
    let (user, system) = user_system_ticks(std::process::id());
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for at in received {
        writeln!(out, "{at}")?;
    }
    writeln!(
        out,
        "end {cpu} {} {}",
        user.saturating_sub(ticks_at_ready.0),
        system.saturating_sub(ticks_at_ready.1)
    )?;
    out.flush()?;
    drop(out);
    // Sockets stay open until the parent closes our stdin (every client has reported).
    let _ =
        tokio::task::spawn_blocking(move || std::io::copy(&mut stdin, &mut std::io::sink())).await;
    drop(open);
    Ok(())
}

/// A socket the load generator received its event on, and when.
type Received = Option<(u128, WebSocketStream<tokio::net::TcpStream>)>;

/// What a load-generator socket speaks: `/ws` (token in the query, websocket.md) or
/// graphql-transport-ws on `/graphql` (token in `connection_init`, one `paymentUpdated`
/// subscription).
enum Socket {
    Ws(String),
    Graphql { url: String, token: String },
}

/// Opens one bench socket from `ip` (at most `sem`'s permits handshake at once), waits until it
/// is ready for events (`/ws`: its `connected` message; GraphQL: `connection_ack`, then it
/// subscribes), and returns the task that waits for the event on it.
async fn open_socket(
    socket: Socket,
    target: SocketAddr,
    ip: IpAddr,
    sem: std::sync::Arc<tokio::sync::Semaphore>,
) -> anyhow::Result<tokio::task::JoinHandle<Received>> {
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};
    let permit = sem.acquire_owned().await?;
    let tcp = tokio::net::TcpSocket::new_v4()?;
    tcp.bind(SocketAddr::new(ip, 0)).context("bind")?;
    let stream = tcp.connect(target).await.context("connect")?;
    let (request, graphql_token) = match socket {
        Socket::Ws(url) => (url.into_client_request()?, None),
        Socket::Graphql { url, token } => {
            let mut request = url.into_client_request()?;
            request.headers_mut().insert(
                "sec-websocket-protocol",
                http::HeaderValue::from_static("graphql-transport-ws"),
            );
            (request, Some(token))
        }
    };
    // A 4 KiB read buffer, not tungstenite's 128 KiB default: it zero-fills the whole free
    // capacity before every read, two reads per event (the event, then WouldBlock), 256 KiB of
    // memset per event on the cores the fan-out shares.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
        .await
        .context("upgrade")?;
    let marker = if let Some(token) = graphql_token {
        let init = json!({ "type": "connection_init", "payload": { "token": token } });
        ws.send(Message::text(init.to_string())).await?;
        let ack = ws
            .next()
            .await
            .context("closed before `connection_ack`")??;
        anyhow::ensure!(
            ack.to_text()?.contains("connection_ack"),
            "answered {ack:?} to connection_init"
        );
        let subscribe = json!({ "id": "1", "type": "subscribe", "payload": {
            "query": "subscription { paymentUpdated { eventId eventType paymentId status amount currency senderId recipientId occurredAt } }" } });
        ws.send(Message::text(subscribe.to_string())).await?;
        "\"next\""
    } else {
        // `connected`
        ws.next().await.context("closed before `connected`")??;
        "\"event\""
    };
    drop(permit);
    Ok(tokio::spawn(async move {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m
                && t.as_str().contains(marker)
            {
                // The socket goes back with the time so it stays open.
                return Some((now_micros(), ws));
            }
        }
        None
    }))
}
