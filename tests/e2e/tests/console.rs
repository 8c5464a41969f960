//! The web console in a real browser: Debian's chromium driven through chromedriver
//! (fantoccini), against the whole platform started as processes, through the gateway's one
//! origin. Scenarios of issue 15: (1) a customer pays a vendor and watches the row go
//! pending → processing → completed without a reload, and the detail shows three
//! transactions; (6) a bad form shows the API's field errors next to the fields; (2) the
//! vendor's report counts the payment; (3) the admin dashboard counts it, the admin deactivates
//! the customer and the customer's open tab lands on sign-in saying the account is disabled;
//! (5) signing out in one tab signs out the other; (4) the dark theme persists across a reload
//! and into a second browser; (7) at 375 px the navigation opens and every page is reachable;
//! (8) axe-core (pinned, fetched with npm into `~/.cache/payplane-axe`) finds no serious or
//! critical violation on any page in either theme. Screenshots of every page in both themes
//! go to `$CARGO_TARGET_DIR/console-screenshots/`.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use payplane_e2e::{Api, PASSWORD, Platform, PlatformOptions};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

const NODE: &str = env!("CARGO_BIN_EXE_payplane-e2e-node");
const WAIT: Duration = Duration::from_secs(20);
/// axe-core, pinned: the accessibility engine injected into every page in (8).
const AXE_VERSION: &str = "4.10.3";

fn init() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// chromedriver on a free loopback port, killed on drop.
struct Driver {
    _child: Child,
    url: String,
    profiles: Vec<PathBuf>,
}

impl Driver {
    async fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting chromedriver (apt-get install chromium chromium-driver)")?;
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if started.elapsed() > Duration::from_secs(10) {
                bail!("chromedriver did not listen on {port}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self {
            _child: child,
            url: format!("http://127.0.0.1:{port}"),
            profiles: Vec::new(),
        })
    }

    /// A new browser with a fresh profile: a separate "device".
    async fn browser(&mut self) -> anyhow::Result<Client> {
        self.sized_browser(1280, 900).await
    }

    /// A new browser whose window is `width` × `height` CSS pixels.
    async fn sized_browser(&mut self, width: u32, height: u32) -> anyhow::Result<Client> {
        let profile = std::env::temp_dir().join(format!(
            "payplane-chromium-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&profile)?;
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--window-size={width},{height}"),
            &format!("--user-data-dir={}", profile.display()),
        ];
        // Chromium's windows are at least 500 px wide, so a phone is emulated instead: its
        // viewport is exactly `width`, with touch and the viewport meta tag in force.
        let mut options = json!({ "binary": "/usr/bin/chromium", "args": args });
        if width < 500 {
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": width, "height": height, "pixelRatio": 2, "touch": true, "mobile": true }
            });
        }
        let caps = json!({ "goog:chromeOptions": options });
        let Value::Object(caps) = caps else {
            bail!("capabilities are an object")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .context("opening a chromium session")?;
        self.profiles.push(profile);
        Ok(client)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        for p in &self.profiles {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    target.join("console-screenshots")
}

/// Saves the current page in both themes as `<name>-light.png` and `<name>-dark.png`.
async fn screenshots(c: &Client, name: &str) -> anyhow::Result<()> {
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir)?;
    let original = c
        .execute("return document.documentElement.dataset.theme", vec![])
        .await?;
    for theme in ["light", "dark"] {
        c.execute(
            "document.documentElement.dataset.theme = arguments[0]",
            vec![json!(theme)],
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        std::fs::write(
            dir.join(format!("{name}-{theme}.png")),
            c.screenshot().await?,
        )?;
    }
    c.execute(
        "document.documentElement.dataset.theme = arguments[0]",
        vec![original],
    )
    .await?;
    Ok(())
}

/// Polls `script` (a JS expression) until it is truthy.
async fn until(c: &Client, what: &str, script: &str) -> anyhow::Result<Value> {
    let started = Instant::now();
    loop {
        let v = c.execute(&format!("return ({script})"), vec![]).await?;
        if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) {
            return Ok(v);
        }
        if started.elapsed() > WAIT {
            let url = c.current_url().await?;
            let text = c
                .execute(
                    "return document.body ? document.body.innerText.slice(0, 600) : ''",
                    vec![],
                )
                .await?;
            bail!("timed out waiting for {what} on {url}; the page says: {text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn path_of(c: &Client) -> anyhow::Result<String> {
    Ok(c.current_url().await?.path().to_owned())
}

async fn sign_in(c: &Client, base: &str, email: &str) -> anyhow::Result<()> {
    c.goto(&format!("{base}/signin")).await?;
    c.find(Locator::Css("#f-email"))
        .await?
        .send_keys(email)
        .await?;
    c.find(Locator::Css("#f-password"))
        .await?
        .send_keys(PASSWORD)
        .await?;
    c.find(Locator::Css("form[action='/signin'] button[type=submit]"))
        .await?
        .click()
        .await?;
    until(
        c,
        "the payments page after sign-in",
        "location.pathname === '/payments'",
    )
    .await?;
    Ok(())
}

/// (1) pay through the form, then watch the list row change with no reload.
async fn pays_and_watches_the_row_complete(
    base: &str,
    c: &Client,
    vendor_id: &str,
) -> anyhow::Result<String> {
    c.goto(&format!("{base}/payments/new")).await?;
    screenshots(c, "payment-new").await?;
    c.find(Locator::Css("#f-recipientId"))
        .await?
        .select_by_value(vendor_id)
        .await?;
    c.find(Locator::Css("#f-amount"))
        .await?
        .send_keys("25.00")
        .await?;
    c.find(Locator::Css("#f-description"))
        .await?
        .send_keys("Lunch with the team")
        .await?;
    c.find(Locator::Css("[data-payment-form] button[type=submit]"))
        .await?
        .click()
        .await?;
    let id = until(
        c,
        "the payment detail",
        "document.querySelector('[data-payment-detail]')?.dataset.paymentDetail",
    )
    .await?;
    let id = id.as_str().context("payment id")?.to_owned();

    c.goto(&format!("{base}/payments")).await?;
    until(
        c,
        "the live connection",
        "document.body.dataset.liveConnected === '1'",
    )
    .await?;
    // A marker that a reload would wipe, and a recorder of every status the badge shows.
    c.execute(
        "window.__noReload = true; window.__seen = [];
         const badge = () => document.querySelector('[data-payment-status=\"' + arguments[0] + '\"]');
         const note = () => { const s = badge()?.dataset.status; if (s && window.__seen[window.__seen.length - 1] !== s) window.__seen.push(s); };
         window.__note = note; note(); window.__rec = setInterval(note, 25);",
        vec![json!(id)],
    )
    .await?;
    until(c, "the row to show completed", &format!("document.querySelector('[data-payment-status=\"{id}\"]')?.dataset.status === 'completed'")).await?;
    let seen = c
        // One last sample: the wait above can see `completed` between two of the recorder's.
        .execute(
            "clearInterval(window.__rec); window.__note(); return window.__seen",
            vec![],
        )
        .await?;
    let no_reload = c
        .execute("return window.__noReload === true", vec![])
        .await?;
    assert_eq!(no_reload, json!(true), "the list was reloaded");
    assert_eq!(
        seen,
        json!(["pending", "processing", "completed"]),
        "statuses the row showed"
    );
    screenshots(c, "payments-list").await?;

    c.goto(&format!("{base}/payments/{id}")).await?;
    let transactions = c
        .execute(
            "return document.querySelectorAll('.timeline-item').length",
            vec![],
        )
        .await?;
    assert_eq!(transactions, json!(3), "the detail's transaction timeline");
    screenshots(c, "payment-detail").await?;
    Ok(id)
}

/// (6) the API's field errors appear next to their fields.
async fn bad_forms_show_field_errors(
    base: &str,
    c: &Client,
    vendor_id: &str,
) -> anyhow::Result<()> {
    c.goto(&format!("{base}/payments/new")).await?;
    c.find(Locator::Css("#f-recipientId"))
        .await?
        .select_by_value(vendor_id)
        .await?;
    c.find(Locator::Css("#f-amount"))
        .await?
        .send_keys("0")
        .await?;
    c.find(Locator::Css("[data-payment-form] button[type=submit]"))
        .await?
        .click()
        .await?;
    let amount = until(
        c,
        "the amount error",
        "document.querySelector('[data-field-error=amount]')?.textContent",
    )
    .await?;
    let description = until(
        c,
        "the description error",
        "document.querySelector('[data-field-error=description]')?.textContent",
    )
    .await?;
    // Next to their fields: inside the same field block, and referenced by the input.
    let wired = c
        .execute(
            "const i = document.getElementById('f-amount');
             return i.closest('.field').contains(document.getElementById('e-amount'))
                 && i.getAttribute('aria-invalid') === 'true'
                 && i.getAttribute('aria-describedby').includes('e-amount')",
            vec![],
        )
        .await?;
    assert_eq!(wired, json!(true), "amount error wired to its input");
    assert!(
        !amount.as_str().unwrap_or("").is_empty() && !description.as_str().unwrap_or("").is_empty()
    );
    screenshots(c, "payment-new-errors").await?;
    Ok(())
}

/// (5) signing out in one tab sends the other tab to sign-in.
async fn sign_out_reaches_the_other_tab(base: &str, c: &Client) -> anyhow::Result<()> {
    let first = c.window().await?;
    c.goto(&format!("{base}/payments")).await?;
    let second = c.new_window(true).await?.handle;
    c.switch_to_window(second.clone()).await?;
    c.goto(&format!("{base}/profile")).await?;
    until(c, "the profile page", "location.pathname === '/profile'").await?;
    screenshots(c, "profile").await?;
    c.switch_to_window(first).await?;
    c.find(Locator::Css("form[action='/signout'] button"))
        .await?
        .click()
        .await?;
    until(
        c,
        "sign-in in the first tab",
        "location.pathname === '/signin'",
    )
    .await?;
    screenshots(c, "signed-out").await?;
    c.switch_to_window(second).await?;
    let started = Instant::now();
    until(
        c,
        "sign-in in the second tab",
        "location.pathname === '/signin'",
    )
    .await?;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(3),
        "the second tab followed after {took:?}"
    );
    c.close_window().await?;
    let handles = c.windows().await?;
    if let Some(h) = handles.into_iter().next() {
        c.switch_to_window(h).await?;
    }
    Ok(())
}

/// (4) the dark theme chosen on one device is the theme after a reload and on another device.
async fn dark_theme_persists(base: &str, driver: &mut Driver, email: &str) -> anyhow::Result<()> {
    let a = driver.browser().await?;
    sign_in(&a, base, email).await?;
    let before = a
        .execute("return document.documentElement.dataset.theme", vec![])
        .await?;
    assert_ne!(before, json!("dark"));
    a.find(Locator::Css("#theme-toggle")).await?.click().await?;
    until(
        &a,
        "the dark theme",
        "document.documentElement.dataset.theme === 'dark'",
    )
    .await?;
    a.refresh().await?;
    until(
        &a,
        "the dark theme after a reload",
        "document.documentElement.dataset.theme === 'dark'",
    )
    .await?;
    let b = driver.browser().await?;
    sign_in(&b, base, email).await?;
    until(
        &b,
        "the dark theme on a second device",
        "document.documentElement.dataset.theme === 'dark'",
    )
    .await?;
    a.close().await?;
    b.close().await?;
    Ok(())
}

/// Every admin page in both themes, and the anonymous pages; `c` is signed in as the admin.
async fn admin_pages(base: &str, c: &Client) -> anyhow::Result<()> {
    for (path, name) in [
        ("/admin", "admin-dashboard"),
        ("/admin/users", "admin-users"),
        ("/admin/audit", "admin-audit"),
        ("/admin/health", "admin-health"),
        ("/admin/config", "admin-config"),
        ("/reports", "reports"),
    ] {
        c.goto(&format!("{base}{path}")).await?;
        until(c, path, "document.querySelector('main h1')").await?;
        assert_eq!(path_of(c).await?, path);
        screenshots(c, name).await?;
    }
    c.find(Locator::Css("form[action='/signout'] button"))
        .await?
        .click()
        .await?;
    until(c, "sign-in", "location.pathname === '/signin'").await?;
    screenshots(c, "signin").await?;
    c.goto(&format!("{base}/register")).await?;
    screenshots(c, "register").await?;
    Ok(())
}

/// (2) the vendor's report for the default period counts the completed payment.
async fn vendor_report_counts_it(base: &str, v: &Client, vendor: &str) -> anyhow::Result<()> {
    sign_in(v, base, vendor).await?;
    v.goto(&format!("{base}/reports")).await?;
    let total = until(
        v,
        "the report's total",
        "document.querySelector('[data-stat=totalPayments]')?.textContent.trim()",
    )
    .await?;
    let completed = v
        .execute(
            "return document.querySelector('[data-stat=completed]')?.textContent.trim()",
            vec![],
        )
        .await?;
    assert_eq!(total, json!("1"), "payments in the vendor's report");
    assert_eq!(
        completed,
        json!("1"),
        "completed payments in the vendor's report"
    );
    screenshots(v, "reports-vendor").await?;
    Ok(())
}

/// (3) the dashboard counts the payment; deactivating the customer sends the customer's open
/// tab to sign-in with the account-disabled message (session:revoked, then close 4001).
async fn admin_counts_it_and_deactivates(
    base: &str,
    a: &Client,
    c: &Client,
    admin: &str,
    customer: &str,
) -> anyhow::Result<Duration> {
    sign_in(a, base, admin).await?;
    a.goto(&format!("{base}/admin")).await?;
    let payments = until(
        a,
        "the dashboard's payment count",
        "document.querySelector('[data-stat=payments]')?.textContent.trim()",
    )
    .await?;
    let completed = a
        .execute(
            "return document.querySelector('[data-stat=completed]')?.textContent.trim()",
            vec![],
        )
        .await?;
    assert_eq!(payments, json!("1"), "payments on the dashboard");
    assert_eq!(completed, json!("1"), "completed payments on the dashboard");

    // The customer's tab is open on a live page.
    c.goto(&format!("{base}/payments")).await?;
    until(
        c,
        "the customer's live connection",
        "document.body.dataset.liveConnected === '1'",
    )
    .await?;
    c.execute("window.__stillHere = true", vec![]).await?;

    a.goto(&format!(
        "{base}/admin/users?search={}",
        customer.replace('+', "%2B")
    ))
    .await?;
    let deactivate = format!("tr[data-user-row='{customer}'] button[data-action=deactivate]");
    let started = Instant::now();
    a.find(Locator::Css(&deactivate)).await?.click().await?;
    until(
        a,
        "the customer shown deactivated",
        &format!("document.querySelector(\"tr[data-user-row='{customer}'] button[data-action=activate]\")"),
    )
    .await?;
    until(
        c,
        "the customer's tab on sign-in",
        "location.pathname === '/signin' && !window.__stillHere",
    )
    .await?;
    let took = started.elapsed();
    let message = until(
        c,
        "the account-disabled message",
        "document.querySelector('.flash-error')?.textContent",
    )
    .await?;
    assert!(
        message
            .as_str()
            .unwrap_or("")
            .contains("account has been disabled"),
        "the message on sign-in: {message}"
    );
    screenshots(c, "signin-disabled").await?;
    Ok(took)
}

/// (7) at 375 px the navigation is collapsed, opens from its button, and reaches every page of
/// the role; no page scrolls sideways.
async fn small_screen_reaches_every_page(
    base: &str,
    m: &Client,
    admin: &str,
    axe: &str,
    found: &mut Vec<String>,
) -> anyhow::Result<usize> {
    sign_in(m, base, admin).await?;
    let width = m.execute("return window.innerWidth", vec![]).await?;
    assert_eq!(width, json!(375), "the viewport's width");
    let links = m
        .execute(
            "return [...document.querySelectorAll('#nav a')].map(a => a.getAttribute('href'))",
            vec![],
        )
        .await?;
    let links: Vec<String> = serde_json::from_value(links)?;
    assert!(links.len() >= 9, "the admin's navigation: {links:?}");
    for (n, href) in links.iter().enumerate() {
        let hidden = m
            .execute(
                "const n = document.getElementById('nav'); return getComputedStyle(n).display === 'none'",
                vec![],
            )
            .await?;
        assert_eq!(hidden, json!(true), "the navigation starts collapsed");
        m.find(Locator::Css(".nav-toggle")).await?.click().await?;
        until(
            m,
            "the navigation open",
            "getComputedStyle(document.getElementById('nav')).display !== 'none' && document.querySelector('.nav-toggle').getAttribute('aria-expanded') === 'true'",
        )
        .await?;
        if n == 0 {
            screenshots(m, "mobile-nav-open").await?;
            audit_page(m, axe, "mobile navigation open", found).await?;
        }
        m.find(Locator::Css(&format!("#nav a[href='{href}']")))
            .await?
            .click()
            .await?;
        until(
            m,
            href,
            &format!("location.pathname === '{href}' && document.querySelector('main h1')"),
        )
        .await?;
        no_sideways_scroll(m, href).await?;
    }
    // A payment's detail from the list.
    m.goto(&format!("{base}/payments")).await?;
    screenshots(m, "mobile-payments").await?;
    m.find(Locator::Css("td[data-label=Description] a"))
        .await?
        .click()
        .await?;
    until(
        m,
        "a payment's detail",
        "document.querySelector('[data-payment-detail]')",
    )
    .await?;
    no_sideways_scroll(m, "/payments/{id}").await?;
    // Theme and sign-out stay within reach on the top bar.
    for sel in ["#theme-toggle", "form[action='/signout'] button"] {
        let shown = m
            .execute(
                "const r = document.querySelector(arguments[0]).getBoundingClientRect(); return r.width > 0 && r.right <= window.innerWidth",
                vec![json!(sel)],
            )
            .await?;
        assert_eq!(shown, json!(true), "{sel} on a small screen");
    }
    Ok(links.len() + 1)
}

async fn no_sideways_scroll(m: &Client, what: &str) -> anyhow::Result<()> {
    let overflow = m
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth",
            vec![],
        )
        .await?;
    assert!(
        overflow.as_i64().unwrap_or(1) <= 0,
        "{what} scrolls sideways by {overflow} px at 375 px"
    );
    Ok(())
}

/// axe-core's minified source, fetched once with npm into a cache outside the clone.
fn axe_source() -> anyhow::Result<String> {
    let home = std::env::var_os("HOME").context("HOME")?;
    let dir = Path::new(&home)
        .join(".cache/payplane-axe")
        .join(AXE_VERSION);
    let file = dir.join("node_modules/axe-core/axe.min.js");
    if !file.exists() {
        std::fs::create_dir_all(&dir)?;
        let status = std::process::Command::new("npm")
            .args([
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--prefix",
            ])
            .arg(&dir)
            .arg(format!("axe-core@{AXE_VERSION}"))
            .stdout(Stdio::null())
            .status()
            .context("running npm to fetch axe-core (apt-get install npm)")?;
        if !status.success() {
            bail!("npm install axe-core@{AXE_VERSION} failed: {status}");
        }
    }
    std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))
}

/// Runs axe-core in the current page in both themes; serious and critical violations are
/// added to `found`, one line each.
async fn audit_page(
    c: &Client,
    axe: &str,
    name: &str,
    found: &mut Vec<String>,
) -> anyhow::Result<()> {
    let loaded = c
        .execute("return typeof window.axe === 'object'", vec![])
        .await?;
    if loaded != json!(true) {
        c.execute(&format!("{axe}\n;return true"), vec![]).await?;
    }
    let original = c
        .execute("return document.documentElement.dataset.theme", vec![])
        .await?;
    for theme in ["light", "dark"] {
        let v = c
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 document.documentElement.dataset.theme = arguments[0];
                 window.axe.run(document, { resultTypes: ['violations'] }).then(r => done(
                   r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => v.impact + ' ' + v.id + ' (' + v.help + '): ' + v.nodes.slice(0, 4)
                       .map(n => n.target.join(' ') + ' — ' + (n.failureSummary || '').replace(/\\s+/g, ' ')).join(' | '))),
                   e => done(['axe failed: ' + e]));",
                vec![json!(theme)],
            )
            .await?;
        let v: Vec<String> = serde_json::from_value(v)?;
        found.extend(v.into_iter().map(|l| format!("{name} [{theme}] {l}")));
    }
    c.execute(
        "document.documentElement.dataset.theme = arguments[0]",
        vec![original],
    )
    .await?;
    Ok(())
}

/// (8) every page, signed in as the admin (who sees them all) and anonymous.
async fn every_page_passes_axe(
    base: &str,
    a: &Client,
    anon: &Client,
    axe: &str,
    payment_id: &str,
    found: &mut Vec<String>,
) -> anyhow::Result<usize> {
    // The canary: an image without a text alternative must be reported, or axe is not
    // really running in these pages.
    a.goto(&format!("{base}/payments")).await?;
    until(a, "/payments", "document.querySelector('main h1')").await?;
    a.execute(
        "const i = document.createElement('img'); i.id = 'axe-canary'; i.src = '/assets/none.png'; document.querySelector('main').append(i)",
        vec![],
    )
    .await?;
    let mut canary = Vec::new();
    audit_page(a, axe, "canary", &mut canary).await?;
    assert!(
        canary.iter().filter(|l| l.contains("image-alt")).count() == 2,
        "axe did not report an image without alt in both themes: {canary:?}"
    );
    let mut pages = 0;
    for path in [
        "/payments".to_owned(),
        format!("/payments/{payment_id}"),
        "/payments/new".to_owned(),
        "/reports".to_owned(),
        "/profile".to_owned(),
        "/admin".to_owned(),
        "/admin/users".to_owned(),
        "/admin/audit".to_owned(),
        "/admin/health".to_owned(),
        "/admin/config".to_owned(),
    ] {
        a.goto(&format!("{base}{path}")).await?;
        until(a, &path, "document.querySelector('main h1')").await?;
        audit_page(a, axe, &path, found).await?;
        pages += 1;
    }
    // A form with the API's field errors.
    a.goto(&format!("{base}/payments/new")).await?;
    a.find(Locator::Css("#f-amount"))
        .await?
        .send_keys("0")
        .await?;
    a.find(Locator::Css("[data-payment-form] button[type=submit]"))
        .await?
        .click()
        .await?;
    until(
        a,
        "the amount error",
        "document.querySelector('[data-field-error=amount]')",
    )
    .await?;
    audit_page(a, axe, "/payments/new with errors", found).await?;
    pages += 1;
    for path in [
        "/signin?reason=disabled",
        "/register",
        "/offline",
        "/no-such-page",
    ] {
        anon.goto(&format!("{base}{path}")).await?;
        until(anon, path, "document.querySelector('main h1')").await?;
        audit_page(anon, axe, path, found).await?;
        pages += 1;
    }
    Ok(pages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_a_real_browser() {
    init();
    // Slow enough processing that the list shows each status for a while. The pick-up delay
    // also covers, after the payment is created, the detail page, the list and its live
    // connection on a slow machine before the recorder starts (it must still see `pending`).
    let options = PlatformOptions {
        psp_pickup_ms: 4000,
        psp_settle_ms: 2500,
        ..PlatformOptions::default()
    };
    let axe = axe_source().unwrap();
    let platform = Platform::start(Path::new(NODE), options).await.unwrap();
    let base = platform.gateway_url.clone();
    let api = Api::new(&base);
    let run = &platform.run_id;
    let customer = format!("customer-{run}@example.com");
    let vendor_email = format!("vendor-{run}@example.com");
    let admin = platform.admin_email.clone();
    api.register(&customer, "Casey Customer", "CUSTOMER", "setup-c")
        .await
        .unwrap();
    let vendor = api
        .register(&vendor_email, "Vera Vendor", "VENDOR", "setup-v")
        .await
        .unwrap();
    let vendor_id = vendor.user_id.clone();

    let mut driver = Driver::start().await.unwrap();
    let c = driver.browser().await.unwrap();
    sign_in(&c, &base, &customer).await.unwrap();
    let started = Instant::now();
    let payment_id = pays_and_watches_the_row_complete(&base, &c, &vendor_id)
        .await
        .unwrap();
    println!(
        "(1) paid and watched it complete live in {:?}",
        started.elapsed()
    );
    bad_forms_show_field_errors(&base, &c, &vendor_id)
        .await
        .unwrap();
    println!("(6) field errors shown next to their fields");

    let v = driver.browser().await.unwrap();
    vendor_report_counts_it(&base, &v, &vendor_email)
        .await
        .unwrap();
    println!("(2) the vendor's report counts the payment");

    let a = driver.browser().await.unwrap();
    let took = admin_counts_it_and_deactivates(&base, &a, &c, &admin, &customer)
        .await
        .unwrap();
    println!(
        "(3) the dashboard counts it; the deactivated customer's tab reached sign-in {took:?} after the click"
    );

    sign_out_reaches_the_other_tab(&base, &v).await.unwrap();
    println!("(5) sign-out reached the second tab");
    v.close().await.unwrap();
    dark_theme_persists(&base, &mut driver, &vendor_email)
        .await
        .unwrap();
    println!("(4) dark theme persisted across reload and a second browser");

    let mut found = Vec::new();
    let m = driver.sized_browser(375, 812).await.unwrap();
    let reached = small_screen_reaches_every_page(&base, &m, &admin, &axe, &mut found)
        .await
        .unwrap();
    m.close().await.unwrap();
    println!("(7) at 375 px the navigation opened and reached {reached} pages");

    let audited = every_page_passes_axe(&base, &a, &c, &axe, &payment_id, &mut found)
        .await
        .unwrap();
    assert!(
        found.is_empty(),
        "axe-core {AXE_VERSION}: serious or critical violations:\n{}",
        found.join("\n")
    );
    println!(
        "(8) axe-core {AXE_VERSION}: no serious or critical violation on {audited} pages in both themes"
    );

    admin_pages(&base, &a).await.unwrap();
    println!("screenshots in {}", screenshot_dir().display());
    a.close().await.unwrap();
    c.close().await.unwrap();
}
