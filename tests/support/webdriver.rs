//! A small WebDriver client (the W3C protocol over HTTP) for driving Debian's
//! headless Chromium through chromedriver in the dashboard test.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Driver {
    child: Child,
    base: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

fn call(method: &str, url: &str, body: Option<Value>) -> Value {
    let req = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json");
    let req = req
        .body(body.map(|b| b.to_string().into_bytes()).unwrap_or_default())
        .unwrap();
    let resp = agent()
        .run(req)
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let text = resp.into_body().read_to_string().unwrap();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if v["value"]["error"].is_string() {
        panic!("webdriver {method} {url}: {}", v["value"]);
    }
    v
}

impl Driver {
    pub fn start() -> Driver {
        let port = free_port();
        let mut child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if agent().get(&format!("{base}/status")).call().is_ok() {
                return Driver { child, base };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("chromedriver did not start");
    }

    pub fn session(&self, profile: &std::path::Path) -> Session {
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--window-size=1280,1700",
                     format!("--user-data-dir={}", profile.display())]
        }}}});
        let v = call("POST", &format!("{}/session", self.base), Some(caps));
        let id = v["value"]["sessionId"].as_str().unwrap().to_owned();
        Session {
            url: format!("{}/session/{id}", self.base),
        }
    }
}

pub struct Session {
    url: String,
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = agent().delete(&self.url).call();
    }
}

impl Session {
    pub fn goto(&self, url: &str) {
        call(
            "POST",
            &format!("{}/url", self.url),
            Some(json!({"url": url})),
        );
    }

    /// Runs `script` (a function body) in the page.
    pub fn js(&self, script: &str, args: Value) -> Value {
        call(
            "POST",
            &format!("{}/execute/sync", self.url),
            Some(json!({"script": script, "args": args})),
        )["value"]
            .clone()
    }

    /// Runs an async script; it ends by calling `arguments[arguments.length - 1](result)`.
    pub fn js_async(&self, script: &str) -> Value {
        call(
            "POST",
            &format!("{}/execute/async", self.url),
            Some(json!({"script": script, "args": []})),
        )["value"]
            .clone()
    }

    /// Waits until `script` returns something truthy; returns it.
    pub fn wait_for(&self, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.js(script, json!([]));
            if !(v.is_null() || v == json!(false) || v == json!("")) {
                return v;
            }
            if Instant::now() > deadline {
                let page = self.js("return document.body.innerText", json!([]));
                panic!("timed out waiting for {what}; the page says:\n{page}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A real click (WebDriver element click) on the element `css` selects.
    pub fn click(&self, css: &str) {
        let v = call(
            "POST",
            &format!("{}/element", self.url),
            Some(json!({"using": "css selector", "value": css})),
        );
        let id = v["value"][ELEMENT].as_str().unwrap().to_owned();
        call(
            "POST",
            &format!("{}/element/{id}/click", self.url),
            Some(json!({})),
        );
    }

    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine as _;
        let v = call("GET", &format!("{}/screenshot", self.url), None);
        base64::engine::general_purpose::STANDARD
            .decode(v["value"].as_str().unwrap())
            .unwrap()
    }
}
