//! The web page at `/`, as a person uses it: in headless Chromium, driven over
//! the DevTools protocol. Screenshots of each step go to
//! `target/ui-screenshots/*.png` (kept as test artifacts), and a wait that runs
//! out saves one of what the page showed and fails with its text.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};
use lapin::options::{BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};

use crate::util::{Server, raw};

/// How long any one thing may take to show up on the page.
const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn the_page_and_its_files_need_no_login_and_load_nothing_from_elsewhere() {
    let server = Server::start().await;
    let page = raw(server.addr, "GET", "/", None, None).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.header("content-type").is_some_and(|t| t.starts_with("text/html")), "{:?}", page.headers);
    assert!(page.body.contains("id=\"login-form\""), "the login form: {}", page.body);
    let policy = page.header("content-security-policy").unwrap_or_default().to_owned();
    assert!(policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"), "{policy}");
    for (path, kind) in [("/ui/app.js", "text/javascript"), ("/ui/app.css", "text/css")] {
        let file = raw(server.addr, "GET", path, None, None).await;
        assert_eq!(file.status, 200, "{path}");
        assert!(file.header("content-type").is_some_and(|t| t.starts_with(kind)), "{path}: {:?}", file.headers);
        for text in [&page.body, &file.body] {
            assert!(!text.contains("https://") && !text.contains("http://localhost"), "{path} names no other site");
            let outside = text.matches("http://").count() - text.matches("http://www.w3.org/2000/svg").count();
            assert_eq!(outside, 0, "{path} loads nothing from elsewhere");
        }
    }
    let api = raw(server.addr, "GET", "/api/queues", None, None).await;
    assert_eq!(api.status, 401, "the API still needs a login: {}", api.body);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_logs_in_sees_the_broker_and_publishes_and_gets_a_message_in_chromium() {
    let Some(chromium) = warren_testkit::chromium(&warren_testkit::current_test()) else { return };
    let server = Server::start().await;
    let client = ConnectionProperties::default().with_connection_name("ui-test-client".into());
    let connection = Connection::connect(&server.amqp_url(), client).await.expect("lapin connects");
    let channel = connection.create_channel().await.expect("a channel");
    let durable = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
    channel.queue_declare("ui-test.orders".into(), durable, FieldTable::default()).await.expect("queue");
    let direct = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
    channel
        .exchange_declare("ui-test.shop".into(), ExchangeKind::Direct, direct, FieldTable::default())
        .await
        .expect("exchange");
    channel
        .queue_bind(
            "ui-test.orders".into(),
            "ui-test.shop".into(),
            "order".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("binding");
    channel
        .basic_publish(
            "".into(),
            "ui-test.orders".into(),
            BasicPublishOptions::default(),
            b"from the client",
            BasicProperties::default(),
        )
        .await
        .expect("publish")
        .await
        .expect("published");
    for (user, tags) in [("watcher", "monitoring"), ("nobody", "")] {
        let body = format!(r#"{{"password":"{user}-pw","tags":"{tags}"}}"#);
        let created = server.raw("PUT", &format!("/api/users/{user}"), Some(&body)).await;
        assert_eq!(created.status, 201, "{user}: {}", created.body);
    }

    let base = server.base.clone();
    let browsing = tokio::task::spawn_blocking(move || browse(&chromium, &base)).await;
    connection.close(200, "done".into()).await.expect("close");
    server.stop().await;
    if let Err(failed) = browsing {
        std::panic::resume_unwind(failed.into_panic());
    }
}

/// The person's visit, step by step.
fn browse(chromium: &std::path::Path, base: &str) {
    let browser = launch(chromium);
    let page = Page::open(&browser, &format!("{base}/"));

    page.wait("the login form", "!document.getElementById('login').hidden");
    page.log_in("guest", "not-the-password");
    page.wait(
        "the refusal of a wrong password",
        "!document.getElementById('login-error').hidden && text('#login-error').includes('Login failed')",
    );
    page.screenshot("login-failed");
    page.assert_true("no credentials kept after a refusal", "sessionStorage.length === 0");

    page.log_in("guest", "guest");
    page.wait("the overview after logging in", "text('#user-name') === 'guest' && !!document.getElementById('totals')");
    page.assert_true("the password is not in the URL", "!location.href.includes('guest')");

    page.click("#tabs a[data-tab=queues]");
    page.wait("the client's queue with its one message", "messagesIn('ui-test.orders') === '1'");
    page.screenshot("queues");

    page.click("#tabs a[data-tab=connections]");
    page.wait("the client's connection by its name", "text('#connections-table').includes('ui-test-client')");
    page.screenshot("connections");

    page.click("#tabs a[data-tab=exchanges]");
    page.wait("the client's exchange", "rowOf('#exchanges-table', 'ui-test.shop') !== null");
    page.click("#exchanges-table a[href='#/exchanges/%2F/ui-test.shop']");
    page.wait("the exchange's binding to the queue", "text('#exchange-bindings-source').includes('ui-test.orders')");
    page.type_into("#publish-routing_key", "order");
    page.type_into("#publish-payload", "from the page");
    page.click("#publish-submit");
    page.wait("the publish confirmation", "text('#publish-result') === 'Message published.'");
    page.screenshot("exchange-publish");

    page.click("#tabs a[data-tab=queues]");
    page.wait("the queue with both messages", "messagesIn('ui-test.orders') === '2'");
    page.click("#queues-table a[href='#/queues/%2F/ui-test.orders']");
    page.wait("the queue's page with its binding", "text('#queue-bindings').includes('ui-test.shop')");
    page.select("#get-ackmode", "ack_requeue_false");
    page.fill("#get-count", "10");
    page.click("#get-submit");
    page.wait(
        "both messages fetched",
        "text('#get-messages').includes('from the client') && text('#get-messages').includes('from the page')",
    );
    page.screenshot("queue-get");

    page.click("#tabs a[data-tab=overview]");
    page.wait(
        "the overview charts",
        "!!document.getElementById('chart-queued') && !!document.getElementById('chart-rates')",
    );
    page.screenshot("overview");

    // A fresh tab has a fresh session: the URL form logs in and leaves no password behind.
    let direct = Page::open(&browser, &format!("{base}/#/login/guest/guest"));
    direct.wait(
        "the overview after logging in by URL",
        "text('#user-name') === 'guest' && !!document.getElementById('totals')",
    );
    direct.assert_true("the credentials left the URL", "location.hash === '#/'");
    direct.screenshot("login-by-url");

    // Tags decide, as in RabbitMQ: no management tag, no login; monitoring logs in without Admin.
    let tags = Page::open(&browser, &format!("{base}/"));
    tags.wait("the login form", "!document.getElementById('login').hidden");
    tags.log_in("nobody", "nobody-pw");
    tags.wait("the refusal of a user without tags", "text('#login-error').startsWith('Login failed')");
    tags.log_in("watcher", "watcher-pw");
    tags.wait(
        "the overview for a monitoring user",
        "text('#user-name') === 'watcher' && !!document.getElementById('totals')",
    );
    tags.assert_true("no Admin tab without administrator", "document.getElementById('admin-tab').hidden");
}

fn launch(chromium: &std::path::Path) -> Browser {
    let options = LaunchOptions {
        path: Some(chromium.to_owned()),
        headless: true,
        // Test machines and CI run as root, where Chromium's sandbox refuses to start.
        sandbox: false,
        window_size: Some((1280, 900)),
        idle_browser_timeout: Duration::from_secs(120),
        ..LaunchOptions::default()
    };
    Browser::new(options).unwrap_or_else(|e| panic!("Chromium at {} starts: {e:#}", chromium.display()))
}

/// Helpers the conditions use: an element's text, the table row whose name cell is `name`, and
/// the total a queue's row shows.
const HELPERS: &str = "var text = (s) => { const e = document.querySelector(s); return e ? e.innerText.trim() : ''; }; \
     var rowOf = (s, name) => [...document.querySelectorAll(s + ' tbody tr')] \
       .find((r) => [...r.cells].some((c) => c.innerText.trim() === name)) || null; \
     var messagesIn = (name) => { const r = rowOf('#queues-table', name); return r ? r.querySelector('.messages').innerText : null; };";

/// One tab, with bounded waits that fail with what the page showed.
struct Page {
    tab: Arc<Tab>,
}

impl Page {
    fn open(browser: &Browser, url: &str) -> Page {
        let tab = browser.new_tab().expect("a tab");
        tab.navigate_to(url).and_then(|t| t.wait_until_navigated()).unwrap_or_else(|e| panic!("open {url}: {e:#}"));
        Page { tab }
    }

    fn eval(&self, expression: &str) -> Option<serde_json::Value> {
        let script = format!("(() => {{ {HELPERS} return ({expression}); }})()");
        self.tab.evaluate(&script, false).ok().and_then(|r| r.value)
    }

    /// Waits until `condition` (a JavaScript expression) is true, for at most [`WAIT`].
    fn wait(&self, what: &str, condition: &str) {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if self.eval(condition) == Some(serde_json::Value::Bool(true)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let shown = self.eval("document.body.innerText").and_then(|v| v.as_str().map(str::to_owned));
        let shot = self.screenshot(&format!("failed-{}", what.replace(|c: char| !c.is_alphanumeric(), "-")));
        panic!(
            "waited {WAIT:?} for {what} ({condition}); screenshot {}; the page showed:\n{}",
            shot.display(),
            shown.unwrap_or_default()
        );
    }

    fn assert_true(&self, what: &str, condition: &str) {
        assert_eq!(self.eval(condition), Some(serde_json::Value::Bool(true)), "{what}: {condition}");
    }

    /// Fills in the login form and sends it.
    fn log_in(&self, user: &str, password: &str) {
        self.fill("#login-username", user);
        self.fill("#login-password", password);
        self.click("#login-submit");
    }

    fn type_into(&self, selector: &str, text: &str) {
        let element = self.tab.wait_for_element(selector).unwrap_or_else(|e| panic!("{selector} on the page: {e:#}"));
        element.type_into(text).unwrap_or_else(|e| panic!("typing into {selector}: {e:#}"));
    }

    /// Replaces what the field holds with `text`, typed.
    fn fill(&self, selector: &str, text: &str) {
        let cleared = self.eval(&format!("(() => {{ const e = document.querySelector({selector:?}); if (!e) return false; e.value = ''; return true; }})()"));
        assert_eq!(cleared, Some(serde_json::Value::Bool(true)), "{selector} on the page");
        self.type_into(selector, text);
    }

    fn click(&self, selector: &str) {
        let element = self.tab.wait_for_element(selector).unwrap_or_else(|e| panic!("{selector} on the page: {e:#}"));
        element.click().unwrap_or_else(|e| panic!("clicking {selector}: {e:#}"));
    }

    /// Chooses `value` in a `<select>`, as picking it with the mouse does.
    fn select(&self, selector: &str, value: &str) {
        let script = format!(
            "(() => {{ const s = document.querySelector({selector:?}); if (!s) return false; s.value = {value:?}; \
             s.dispatchEvent(new Event('change', {{ bubbles: true }})); return s.value === {value:?}; }})()"
        );
        let chosen = self.tab.evaluate(&script, false).ok().and_then(|r| r.value);
        assert_eq!(chosen, Some(serde_json::Value::Bool(true)), "{value} chosen in {selector}");
    }

    /// Saves a screenshot as `target/ui-screenshots/NAME.png` and returns its path.
    fn screenshot(&self, name: &str) -> PathBuf {
        let dir = screenshots();
        let path = dir.join(format!("{name}.png"));
        let png = self.tab.capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true);
        match png.map_err(|e| e.to_string()).and_then(|png| {
            std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, png)).map_err(|e| e.to_string())
        }) {
            Ok(()) => {}
            Err(e) => eprintln!("no screenshot {}: {e}", path.display()),
        }
        path
    }
}

/// `target/ui-screenshots`, beside the test's own scratch directory.
fn screenshots() -> PathBuf {
    let scratch = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    scratch.parent().unwrap_or(scratch).join("ui-screenshots")
}
