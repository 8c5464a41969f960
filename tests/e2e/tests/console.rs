//! The web console in a real browser: Debian's chromium driven through chromedriver
//! (fantoccini), against the whole platform started as processes, through the gateway's one
//! origin. Scenarios of issue 15 in order: (1) a customer pays a vendor and watches the row go
//! pending → processing → completed without a reload, and the detail shows three
//! transactions; (5) signing out in one tab signs out the other; (6) a bad form shows the API's
//! field errors next to the fields; (4) the dark theme persists across a reload and into a
//! second browser. Screenshots of every page in both themes go to
//! `$CARGO_TARGET_DIR/console-screenshots/`.

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
            "--window-size=1280,900",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({ "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args } });
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
         note(); window.__rec = setInterval(note, 25);",
        vec![json!(id)],
    )
    .await?;
    until(c, "the row to show completed", &format!("document.querySelector('[data-payment-status=\"{id}\"]')?.dataset.status === 'completed'")).await?;
    let seen = c
        .execute("clearInterval(window.__rec); return window.__seen", vec![])
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

/// Every admin page in both themes, and the anonymous pages.
async fn admin_pages(base: &str, c: &Client, admin: &str) -> anyhow::Result<()> {
    sign_in(c, base, admin).await?;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_a_real_browser() {
    init();
    // Slow enough processing that the list shows each status for a while.
    let options = PlatformOptions {
        psp_pickup_ms: 2500,
        psp_settle_ms: 2500,
        ..PlatformOptions::default()
    };
    let platform = Platform::start(Path::new(NODE), options).await.unwrap();
    let base = platform.gateway_url.clone();
    let api = Api::new(&base);
    let run = &platform.run_id;
    let customer = format!("customer-{run}@example.com");
    let vendor_email = format!("vendor-{run}@example.com");
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
    pays_and_watches_the_row_complete(&base, &c, &vendor_id)
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
    sign_out_reaches_the_other_tab(&base, &c).await.unwrap();
    println!("(5) sign-out reached the second tab");
    dark_theme_persists(&base, &mut driver, &vendor_email)
        .await
        .unwrap();
    println!("(4) dark theme persisted across reload and a second browser");
    admin_pages(&base, &c, &platform.admin_email).await.unwrap();
    println!("screenshots in {}", screenshot_dir().display());
    c.close().await.unwrap();
}
