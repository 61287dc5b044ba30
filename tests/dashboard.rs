//! The Compliance tab in headless Chromium (Debian's chromium + chromedriver):
//! an admin subscribes, generates a packet, sees it verified in the browser,
//! downloads its JSON and PDF; a member finds subscribing unavailable; a
//! state-changing request without the page's protection is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::json;
use support::webdriver::Driver;
use support::*;

fn page_url(s: &Server, user: &str) -> String {
    format!(
        "http://{user}:demo@{}/ui/organizations/acme/compliance",
        s.addr
    )
}

/// Fetches a link of the page (with the browser's credentials) and reports
/// its status, content type and first bytes.
const FETCH_LINK: &str = r#"
const done = arguments[arguments.length - 1];
const a = document.querySelector(arguments[0]);
fetch(new URL(a.getAttribute("href"), location.origin)).then(async (r) => {
  const bytes = new Uint8Array(await r.arrayBuffer());
  done({status: r.status, type: r.headers.get("content-type"), head: new TextDecoder().decode(bytes.slice(0, 12)), size: bytes.length});
}).catch((e) => done({error: String(e)}));
"#;

fn the_compliance_tab_in_a_real_browser() {
    let store = Store::new(Backend::Sqlite);
    // Webhooks go to 127.0.0.1 (allowed here) and nowhere else.
    let s = Server::start_with(
        &store,
        Options {
            env: vec![("VOUCH_WEBHOOK_ALLOW_PRIVATE", "true".into())],
            ..Options::default()
        },
    );
    let driver = Driver::start();

    // An admin.
    let admin = driver.session(&store.path().join("profile-bob"));
    admin.goto(&page_url(&s, "bob"));
    admin.wait_for(
        "the subscriptions",
        "return document.querySelectorAll('#subscriptions tbody tr').length === 4",
    );
    assert_eq!(
        admin.js("return document.title", json!([])),
        "Compliance · Acme Engineering"
    );
    admin.click("tr[data-framework='gdpr_ropa'] button");
    admin.wait_for(
        "the subscription",
        "const r = document.querySelector(\"tr[data-framework='gdpr_ropa']\"); return r && r.innerText.includes('Subscribed') && !r.innerText.includes('Not subscribed')",
    );
    admin.wait_for(
        "the framework choice",
        "return document.querySelector('#framework option[value=gdpr_ropa]') !== null",
    );
    admin.click("#framework option[value='gdpr_ropa']");
    admin.click("#generate-button");
    admin.wait_for(
        "the packet",
        "return document.querySelectorAll('#packets tbody tr[data-report]').length === 1",
    );
    let verdict = admin.wait_for(
        "the browser's verdict",
        "const c = document.querySelector('#packets tbody tr[data-report] .verdict'); return c && c.innerText.trim()",
    );
    let verdict = verdict.as_str().unwrap().to_owned();
    assert!(
        verdict.starts_with("Verified (key-"),
        "the browser did not verify the packet: {verdict}"
    );
    // What the verified packet was computed from, as the packet names it,
    // and the records behind the digest.
    let body = s.get(
        "/organizations/acme/compliance-reports?limit=1",
        Auth::Basic("bob", "demo"),
    );
    let id = body.json()["reports"][0]["report_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let packet = s.get(
        &format!("/organizations/acme/compliance-reports/{id}"),
        Auth::Basic("bob", "demo"),
    );
    let inputs = packet.json()["packet"]["inputs"].clone();
    let shown = admin.js(
        "const c = document.querySelector('#packets tbody tr[data-report] .inputs');\
         return [c.innerText, Array.from(c.querySelectorAll('code[title]'), (e) => e.title)]",
        json!([]),
    );
    let text = shown[0].as_str().unwrap();
    for expected in [
        format!(
            "gdpr_ropa {}",
            inputs["framework"]["version"].as_str().unwrap()
        ),
        format!(
            "vouch-engine {}",
            inputs["engine"]["version"].as_str().unwrap()
        ),
        format!("{}…", &inputs["records_sha256"].as_str().unwrap()[..12]),
    ] {
        assert!(text.contains(&expected), "{expected:?} not in {text:?}");
    }
    assert_eq!(
        shown[1],
        json!([inputs["records_sha256"], inputs["framework"]["sha256"]])
    );
    let records_link =
        admin.js_async(&FETCH_LINK.replace("arguments[0]", "'#packets a[data-kind=records]'"));
    assert_eq!(records_link["status"], 200, "{records_link}");
    assert_eq!(
        records_link["size"],
        s.get(
            &format!("/organizations/acme/compliance-reports/{id}/records"),
            Auth::Basic("bob", "demo")
        )
        .body
        .len()
    );
    for (kind, head) in [
        ("attestation", "{\"payload\""),
        ("bundle", "{\"dsseEnvel"),
        ("oscal", "{\"assessmen"),
    ] {
        let link = admin.js_async(
            &FETCH_LINK.replace("arguments[0]", &format!("'#packets a[data-kind={kind}]'")),
        );
        assert_eq!(link["status"], 200, "{kind}: {link}");
        assert!(
            link["head"].as_str().unwrap().starts_with(head),
            "{kind}: {link}"
        );
    }
    let json_link =
        admin.js_async(&FETCH_LINK.replace("arguments[0]", "'#packets a[data-kind=json]'"));
    assert_eq!(json_link["status"], 200, "{json_link}");
    assert!(
        json_link["head"]
            .as_str()
            .unwrap()
            .starts_with("{\"report_id\""),
        "{json_link}"
    );
    admin.wait_for(
        "the PDF link",
        "return document.querySelector('#packets a[data-kind=pdf]') !== null",
    );
    let pdf_link =
        admin.js_async(&FETCH_LINK.replace("arguments[0]", "'#packets a[data-kind=pdf]'"));
    assert_eq!(pdf_link["status"], 200, "{pdf_link}");
    assert_eq!(pdf_link["type"], "application/pdf");
    assert!(pdf_link["head"].as_str().unwrap().starts_with("%PDF-"));
    admin.wait_for(
        "the posture",
        "return document.querySelectorAll('#posture tbody tr').length === 3",
    );

    // The schedule: the subscription's next period, its series checked in
    // the browser; after a second packet, the latest change between them.
    admin.wait_for(
        "the series check",
        "const c = document.querySelector(\"#schedule tr[data-framework='gdpr_ropa'] .series\"); return c && c.innerText.includes('1 packets linked')",
    );
    admin.click("#generate-button");
    admin.wait_for(
        "the second packet's series and change",
        "const r = document.querySelector(\"#schedule tr[data-framework='gdpr_ropa']\");\
         return r && r.querySelector('.series').innerText.includes('2 packets linked') && r.querySelector('.change').innerText.includes('no regression')",
    );
    let due = admin.js(
        "return document.querySelector(\"#schedule tr[data-framework='gdpr_ropa']\").innerText",
        json!([]),
    );
    assert!(due.as_str().unwrap().contains("due "), "{due}");
    admin.click("#schedule tr[data-framework='gdpr_ropa'] button");
    admin.wait_for(
        "the pause",
        "const r = document.querySelector(\"#schedule tr[data-framework='gdpr_ropa']\"); return r && r.innerText.includes('paused since')",
    );
    let schedule = s
        .get(
            "/organizations/acme/compliance-schedule",
            Auth::Basic("bob", "demo"),
        )
        .json();
    assert_eq!(schedule["subscriptions"][0]["paused"], true, "{schedule}");

    // A webhook endpoint added on the page: its secret shown once, the
    // listing without it.
    admin.js(
        "document.getElementById('webhook-url').value = 'http://127.0.0.1:9/hook'; return null",
        json!([]),
    );
    admin.click("#webhook-button");
    let secret = admin.wait_for(
        "the new endpoint's secret",
        "const p = document.getElementById('webhook-secret'); return !p.hidden && p.querySelector('code') && p.querySelector('code').innerText",
    );
    assert!(secret.as_str().unwrap().starts_with("whsec_"), "{secret}");
    admin.wait_for(
        "the endpoint listed",
        "return document.querySelectorAll('#webhooks tbody tr[data-endpoint]').length === 1",
    );
    let hooks = s.get("/organizations/acme/webhooks", Auth::Basic("bob", "demo"));
    assert_eq!(
        hooks.json()["webhooks"][0]["url"],
        "http://127.0.0.1:9/hook"
    );
    assert!(!hooks.text().contains("whsec_"));

    // An outside auditor, granted gdpr_ropa for a week on the page.
    admin.js(
        "document.getElementById('grant-user').value = 'erin';\
         document.getElementById('grant-framework').value = 'gdpr_ropa';\
         document.getElementById('grant-days').value = '7'; return null",
        json!([]),
    );
    admin.click("#grant-button");
    admin.wait_for(
        "the grant listed",
        "const r = document.querySelector('#grants tbody tr[data-grant]'); return r && r.innerText.includes('erin') && r.innerText.includes('In force')",
    );

    // The key rule the page verifies with: a key signs only from its
    // valid_from, until its retirement, and never once revoked.
    let rule = admin.js(
        "const k = {key_id: 'k', valid_from: '2026-06-01T00:00:00Z', retired_at: '2026-09-01T00:00:00Z'};\
         return [window.vouchKeyProblem(k, 'k', '2026-05-31T23:59:59Z'),\
                 window.vouchKeyProblem(k, 'k', '2026-06-01T00:00:00Z'),\
                 window.vouchKeyProblem(k, 'k', '2026-09-01T00:00:00Z'),\
                 window.vouchKeyProblem({...k, revoked_at: '2026-07-01T00:00:00Z'}, 'k', '2026-07-15T00:00:00Z'),\
                 window.vouchKeyProblem(undefined, 'k', '2026-07-15T00:00:00Z')]",
        json!([]),
    );
    assert_eq!(
        rule,
        json!([
            "key k was not yet valid when the packet was generated",
            null,
            "key k was retired before the packet",
            "key k was revoked",
            "key k is not published"
        ]),
        "the page's key rule"
    );

    // A state-changing request without the page's token: refused.
    let forged = admin.js_async(
        "const done = arguments[arguments.length - 1];\
         fetch(new URL('/organizations/acme/compliance-subscriptions/dora', location.origin), {method: 'PUT'})\
           .then(async (r) => done({status: r.status, body: await r.text()}));",
    );
    assert_eq!(forged["status"], 403, "{forged}");
    assert!(forged["body"].as_str().unwrap().contains("X-Vouch-CSRF"));
    let subs = s
        .get(
            "/organizations/acme/compliance-subscriptions",
            Auth::Basic("bob", "demo"),
        )
        .json();
    assert!(
        subs["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["framework"] == "dora" && x["enabled"] == false),
        "the forged request changed nothing"
    );
    let shot = admin.screenshot();
    assert!(shot.starts_with(b"\x89PNG"));
    std::fs::write(store.path().join("dashboard-admin.png"), &shot).unwrap();
    if let Some(dir) = std::env::var_os("VOUCH_SCREENSHOT_DIR") {
        std::fs::write(std::path::Path::new(&dir).join("dashboard.png"), &shot).unwrap();
    }

    // A member: subscribing is unavailable, with the reason.
    let member = driver.session(&store.path().join("profile-carol"));
    member.goto(&page_url(&s, "carol"));
    member.wait_for(
        "the subscriptions",
        "return document.querySelectorAll('#subscriptions tbody tr').length === 4",
    );
    let disabled = member.js("return Array.from(document.querySelectorAll('#subscriptions button')).every(b => b.disabled)", json!([]));
    assert_eq!(disabled, true, "a member can press subscribe");
    let hint = member.js(
        "return document.getElementById('subs-readonly').innerText",
        json!([]),
    );
    assert!(
        hint.as_str().unwrap().contains("Only owners and admins"),
        "{hint}"
    );
    // The member still generates (any member may) and sees the admin's packet verified.
    member.wait_for(
        "the packets",
        "return document.querySelectorAll('#packets tbody tr[data-report]').length === 2",
    );
    let member_view = member.js(
        "return [document.getElementById('webhooks') === null, document.querySelector('#schedule button').disabled]",
        json!([]),
    );
    assert_eq!(
        member_view,
        json!([true, true]),
        "a member manages neither webhooks nor schedules"
    );

    // The auditor's view: the granted packets, verified, and nothing else.
    let auditor = driver.session(&store.path().join("profile-erin"));
    auditor.goto(&page_url(&s, "erin"));
    auditor.wait_for(
        "the auditor's packets",
        "return document.querySelectorAll('#packets tbody tr[data-report]').length === 2",
    );
    let view = auditor.js(
        "return [document.getElementById('auditor-view').innerText, document.getElementById('subscriptions'), document.getElementById('generate'), document.getElementById('posture')]",
        json!([]),
    );
    assert!(view[0].as_str().unwrap().contains("gdpr_ropa"), "{view}");
    assert_eq!(
        view.as_array().unwrap()[1..],
        [json!(null), json!(null), json!(null)],
        "{view}"
    );
    let verdict = auditor.wait_for(
        "the auditor's verdict",
        "const c = document.querySelector('#packets tbody tr[data-report] .verdict'); return c && c.innerText.includes('Verified') && c.innerText.trim()",
    );
    assert!(
        verdict.as_str().unwrap().starts_with("Verified"),
        "{verdict}"
    );
    let shot = auditor.screenshot();
    std::fs::write(store.path().join("dashboard-auditor.png"), &shot).unwrap();
    if let Some(dir) = std::env::var_os("VOUCH_SCREENSHOT_DIR") {
        std::fs::write(
            std::path::Path::new(&dir).join("dashboard-auditor.png"),
            &shot,
        )
        .unwrap();
    }
    // Revoked on the page: the auditor's page is gone, as for a stranger.
    admin.click("#grants tbody tr[data-grant] button");
    admin.wait_for(
        "the revocation",
        "const r = document.querySelector('#grants tbody tr[data-grant]'); return r && r.innerText.includes('Revoked')",
    );
    let gone = s.get(
        "/ui/organizations/acme/compliance",
        Auth::Basic("erin", "demo"),
    );
    assert_eq!(gone.status, 404);
}

fn the_page_is_protected() {
    let store = Store::new(Backend::Sqlite);
    let s = Server::start(&store);
    let r = s.get("/ui/organizations/acme/compliance", Auth::None);
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate").unwrap().starts_with("Basic"),
        "the browser must prompt"
    );
    assert_eq!(
        s.get(
            "/ui/organizations/acme/compliance",
            Auth::Basic("dave", "demo")
        )
        .status,
        404
    );
    let r = s.get(
        "/ui/organizations/acme/compliance",
        Auth::Basic("carol", "demo"),
    );
    assert_eq!(r.status, 200);
    let csp = r.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let html = r.text();
    assert!(
        !html.contains("<script>") && !html.contains("onclick"),
        "no inline script"
    );
    assert_eq!(s.get("/ui/static/dashboard.js", Auth::None).status, 200);
    assert_eq!(s.get("/ui/static/../../etc/passwd", Auth::None).status, 404);
    // Cross-site requests that change state: refused; API clients: unaffected.
    let put = |headers: &[(&str, &str)]| {
        request(
            "PUT",
            &s.url("/organizations/acme/compliance-subscriptions/soc2"),
            Auth::Basic("bob", "demo"),
            Some(b""),
            headers,
        )
        .status
    };
    assert_eq!(put(&[("origin", "https://evil.example")]), 403);
    assert_eq!(put(&[("sec-fetch-site", "cross-site")]), 403);
    assert_eq!(
        put(&[
            ("origin", "https://evil.example"),
            ("x-vouch-csrf", "forged")
        ]),
        403
    );
    assert_eq!(put(&[]), 200, "curl and scripts send no browser marks");
    let html = s
        .get(
            "/ui/organizations/acme/compliance",
            Auth::Basic("bob", "demo"),
        )
        .text();
    let token = html
        .split("name=\"vouch-csrf\" content=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(
        put(&[("origin", &s.url("")), ("x-vouch-csrf", &token)]),
        200,
        "the page's own token works"
    );
    // A hostile organization name is escaped.
    let batch = json!({"organizations": [{"id": "evil", "name": "<script>alert(1)</script>", "billing_email": "e@example.com"}],
        "users": [{"username": "eve", "password": "demo"}], "memberships": [{"organization_id": "evil", "username": "eve", "role": "owner"}]});
    assert_eq!(s.admin(&batch).status, 200);
    let html = s
        .get(
            "/ui/organizations/evil/compliance",
            Auth::Basic("eve", "demo"),
        )
        .text();
    assert!(html.contains("&lt;script&gt;alert(1)&lt;") && !html.contains("<script>alert(1)"));
}

fn main() -> std::process::ExitCode {
    use support::harness::{run, Tool};
    run(&[
        case!(the_compliance_tab_in_a_real_browser).needs(&[Tool::Chromium]),
        case!(the_page_is_protected),
    ])
}
