// The Compliance tab. Data goes into the page through textContent only, never
// innerHTML. State-changing requests carry the page's CSRF token header, which
// a page on another site cannot set.
"use strict";

(function () {
  const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
  const org = meta("vouch-org");
  const csrf = meta("vouch-csrf");
  const canManage = meta("vouch-can-manage") === "yes";
  const auditor = meta("vouch-auditor") === "yes";
  const base = `/organizations/${encodeURIComponent(org)}`;
  const statusLine = document.getElementById("status");
  let keysDoc = null;
  const verdicts = new Map(); // report_id -> verdict, checked once

  function say(text, error) {
    statusLine.textContent = text;
    statusLine.classList.toggle("error", Boolean(error));
  }

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function badge(text, kind) {
    return el("span", text, `badge ${kind}`);
  }

  async function api(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (method !== "GET") {
      headers["X-Vouch-CSRF"] = csrf;
      headers["Content-Type"] = "application/json";
    }
    // Against the origin, not the document URL: a page opened as
    // http://user:pass@host/... would otherwise carry the credentials into
    // every URL, which fetch() refuses. The browser adds the Basic
    // credentials it already holds for this origin.
    const resp = await fetch(new URL(path, window.location.origin), { method, headers, body: body ? JSON.stringify(body) : undefined, credentials: "same-origin" });
    const text = await resp.text();
    if (!resp.ok) {
      let message = `${resp.status}`;
      try { message = JSON.parse(text).error.message; } catch (_) { /* keep the status */ }
      throw new Error(message);
    }
    return text;
  }

  // ------------------------------------------------------------ subscriptions
  async function loadSubscriptions() {
    const subs = JSON.parse(await api("GET", `${base}/compliance-subscriptions`)).subscriptions;
    const body = document.querySelector("#subscriptions tbody");
    body.replaceChildren();
    const select = document.getElementById("framework");
    const chosen = select.value;
    select.replaceChildren();
    for (const s of subs) {
      const tr = el("tr");
      tr.dataset.framework = s.framework;
      const name = el("td");
      name.append(el("strong", s.name), el("br"), el("code", s.framework));
      tr.append(name, el("td", s.attests), el("td", `€${s.monthly_price_eur} / month`));
      const state = el("td");
      state.append(s.enabled ? badge("Subscribed", "ok") : badge("Not subscribed", "off"));
      tr.append(state);
      const action = el("td");
      const button = el("button", s.enabled ? "Unsubscribe" : "Subscribe");
      button.type = "button";
      button.dataset.action = s.enabled ? "unsubscribe" : "subscribe";
      button.setAttribute("aria-label", `${s.enabled ? "Unsubscribe from" : "Subscribe to"} ${s.name}`);
      if (!canManage) {
        button.disabled = true;
        button.setAttribute("aria-describedby", "subs-readonly");
        button.title = "Only owners and admins can change subscriptions";
      } else {
        button.addEventListener("click", () => toggleSubscription(s, button));
      }
      action.append(button);
      tr.append(action);
      body.append(tr);
      if (s.enabled) {
        const option = el("option", s.name);
        option.value = s.framework;
        select.append(option);
      }
    }
    if (chosen) select.value = chosen;
    const none = select.options.length === 0;
    document.getElementById("generate-button").disabled = none;
    if (none) {
      const option = el("option", "Subscribe to a framework first");
      option.value = "";
      select.append(option);
    }
  }

  async function toggleSubscription(s, button) {
    button.disabled = true;
    try {
      await api(s.enabled ? "DELETE" : "PUT", `${base}/compliance-subscriptions/${encodeURIComponent(s.framework)}`);
      say(s.enabled ? `Unsubscribed from ${s.name}. Past packets stay available.` : `Subscribed to ${s.name}.`);
      await Promise.all([loadSubscriptions(), loadSchedule()]);
    } catch (e) {
      say(`Could not change the subscription: ${e.message}`, true);
      button.disabled = false;
    }
  }

  // ------------------------------------------------------------ verification
  const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0")).join("");

  async function keys() {
    if (!keysDoc) keysDoc = JSON.parse(await api("GET", "/.well-known/compliance-signing-keys"));
    return keysDoc;
  }

  // Why the published key `entry` cannot vouch for a packet generated at
  // `generated` (null when it can): unpublished, revoked, not yet valid, or
  // retired. RFC 3339 UTC with whole seconds compares as text.
  function keyProblem(entry, keyId, generated) {
    if (!entry) return `key ${keyId} is not published`;
    if (entry.revoked_at) return `key ${keyId} was revoked`;
    if (entry.valid_from && generated < entry.valid_from) return `key ${keyId} was not yet valid when the packet was generated`;
    if (entry.retired_at && generated >= entry.retired_at) return `key ${keyId} was retired before the packet`;
    return null;
  }
  // The rule, for anyone who wants to check it in the browser (and the tests).
  window.vouchKeyProblem = keyProblem;

  // Verifies a packet body as an auditor would: the exact bytes of the packet
  // value, their SHA-256, the published key valid at generated_at, Ed25519.
  async function verify(bodyText) {
    if (!window.crypto || !crypto.subtle) return { ok: false, why: "verification needs a secure context (HTTPS or localhost)" };
    const start = bodyText.indexOf('"packet":') + '"packet":'.length;
    const end = bodyText.lastIndexOf(',"signature":');
    const packetText = bodyText.slice(start, end);
    const packetBytes = new TextEncoder().encode(packetText);
    const body = JSON.parse(bodyText);
    const sig = body.signature;
    const digest = hex(await crypto.subtle.digest("SHA-256", packetBytes));
    if (digest !== sig.canonical_sha256) return { ok: false, why: "digest mismatch" };
    const entry = (await keys()).keys.find((k) => k.key_id === sig.key_id);
    const problem = keyProblem(entry, sig.key_id, body.packet.generated_at);
    if (problem) return { ok: false, why: problem };
    try {
      const key = await crypto.subtle.importKey("raw", b64(entry.public_key), { name: "Ed25519" }, false, ["verify"]);
      const good = await crypto.subtle.verify({ name: "Ed25519" }, key, b64(sig.value), packetBytes);
      return good ? { ok: true, key: sig.key_id, inputs: body.packet.inputs } : { ok: false, why: "bad signature" };
    } catch (e) {
      return { ok: false, why: `this browser cannot check Ed25519 (${e.message})` };
    }
  }

  // ------------------------------------------------------------ packets
  let pdfPoll = null;

  async function loadPackets() {
    const list = JSON.parse(await api("GET", `${base}/compliance-reports?limit=50`)).reports;
    const body = document.querySelector("#packets tbody");
    body.replaceChildren();
    let waiting = false;
    for (const r of list) {
      const tr = el("tr");
      tr.dataset.report = r.report_id;
      tr.append(el("td", r.generated_at), el("td", r.framework));
      tr.append(el("td", r.period_start && r.period_end ? `${r.period_start} – ${r.period_end}` : ""));
      const status = el("td");
      status.append(r.status === "complete" ? badge("Complete", "ok") : badge("Failed", "bad"));
      if (r.trigger === "scheduled") status.append(" ", badge("Scheduled", "off"));
      const fresh = el("td");
      if (r.status === "complete" && r.valid_until) {
        fresh.append(r.stale ? badge(`Stale since ${r.valid_until}`, "bad") : badge(`Valid until ${r.valid_until}`, "ok"));
      }
      tr.append(status, fresh, el("td", r.key_id || "", "mono"));
      const verdict = el("td");
      verdict.className = "verdict";
      const inputs = el("td");
      inputs.className = "inputs";
      tr.append(verdict, inputs);
      const links = el("td");
      if (r.status === "complete") {
        const json = el("a", "JSON");
        json.href = `${base}/compliance-reports/${encodeURIComponent(r.report_id)}`;
        json.setAttribute("download", `${r.report_id}.json`);
        json.dataset.kind = "json";
        json.setAttribute("aria-label", `Download packet ${r.report_id} as JSON`);
        links.append(json);
        links.append(document.createTextNode(" · "));
        if (r.pdf_available) {
          const pdf = el("a", "PDF");
          pdf.href = `${base}/compliance-reports/${encodeURIComponent(r.report_id)}/pdf`;
          pdf.setAttribute("aria-label", `Download packet ${r.report_id} as PDF`);
          pdf.dataset.kind = "pdf";
          links.append(pdf);
        } else if (r.pdf_status === "failed") {
          // Out of attempts: asking for the PDF renders it once more.
          const pdf = el("a", "PDF failed, retry");
          pdf.href = `${base}/compliance-reports/${encodeURIComponent(r.report_id)}/pdf`;
          pdf.title = r.pdf_error || "";
          pdf.setAttribute("aria-label", `Rendering the PDF of packet ${r.report_id} failed: ${r.pdf_error || ""}. Retry`);
          pdf.dataset.kind = "pdf";
          links.append(pdf);
        } else {
          const hint = el("span", r.pdf_status === "rendering" ? "PDF rendering…" : "PDF queued…", "hint");
          if (r.pdf_error) hint.title = `the last attempt failed: ${r.pdf_error}`;
          links.append(hint);
          waiting = true;
        }
        links.append(document.createTextNode(" · "));
        const records = el("a", "Records");
        records.href = `${base}/compliance-reports/${encodeURIComponent(r.report_id)}/records`;
        records.setAttribute("download", `${r.report_id}-records.json`);
        records.setAttribute("aria-label", `Download the records packet ${r.report_id} was evaluated on`);
        records.dataset.kind = "records";
        links.append(records);
        // The same packet in the standards' forms (README: Verify with standard tools).
        for (const [kind, label, what] of [["attestation", "in-toto", "in-toto attestation (DSSE)"], ["bundle", "Sigstore", "Sigstore bundle"], ["oscal", "OSCAL", "OSCAL assessment results"]]) {
          links.append(document.createTextNode(" · "));
          const a = el("a", label);
          a.href = `${base}/compliance-reports/${encodeURIComponent(r.report_id)}/${kind}`;
          a.setAttribute("download", `${r.report_id}-${kind}.json`);
          a.setAttribute("aria-label", `Download packet ${r.report_id} as ${what}`);
          a.dataset.kind = kind;
          links.append(a);
        }
        showVerdict(r.report_id, verdict, inputs);
      }
      tr.append(links);
      body.append(tr);
    }
    if (list.length === 0) {
      const tr = el("tr");
      const td = el("td", "No packets yet.");
      td.colSpan = 9;
      tr.append(td);
      body.append(tr);
    }
    clearTimeout(pdfPoll);
    if (waiting) pdfPoll = setTimeout(() => loadPackets().catch(() => {}), 2000);
  }

  // What a verified packet was computed from: the digests `vouch reproduce`
  // checks. Shown only from bytes whose signature held.
  function showInputs(cell, inputs) {
    if (!inputs) {
      cell.replaceChildren(el("span", "not recorded (an earlier engine)", "hint"));
      return;
    }
    const dl = el("dl");
    dl.className = "inputs";
    const digest = (d) => {
      const c = el("code", d ? `${d.slice(0, 12)}…` : "none");
      if (d) c.title = d;
      return c;
    };
    const row = (k, ...v) => {
      const dd = el("dd");
      dd.append(...v);
      dl.append(el("dt", k), dd);
    };
    row("Records", digest(inputs.records_sha256));
    row("Framework", `${inputs.framework.id} ${inputs.framework.version} `, digest(inputs.framework.sha256));
    row("Engine", `${inputs.engine.name} ${inputs.engine.version}`);
    for (const p of inputs.plugins || []) row("Plugin", `${p.name} ${p.version} `, digest(p.sha256));
    cell.replaceChildren(dl);
  }

  async function showVerdict(id, cell, inputsCell) {
    if (!verdicts.has(id)) {
      verdicts.set(id, api("GET", `${base}/compliance-reports/${encodeURIComponent(id)}`).then(verify).catch((e) => ({ ok: false, why: e.message })));
    }
    const v = await verdicts.get(id);
    cell.replaceChildren(v.ok ? badge(`Verified (${v.key})`, "ok") : badge(`Not verified: ${v.why}`, "bad"));
    if (v.ok) showInputs(inputsCell, v.inputs);
    else inputsCell.replaceChildren();
  }

  async function generate(event) {
    event.preventDefault();
    const framework = document.getElementById("framework").value;
    if (!framework) return;
    const button = document.getElementById("generate-button");
    button.disabled = true;
    say("Generating and signing the packet…");
    try {
      const body = JSON.parse(await api("POST", `${base}/compliance-reports`, { framework }));
      say(`Packet ${body.report_id} generated and signed with ${body.signature.key_id}.`);
      await Promise.all([loadPackets(), loadSchedule()]);
    } catch (e) {
      say(`Could not generate the packet: ${e.message}`, true);
    } finally {
      button.disabled = false;
    }
  }

  // ------------------------------------------------------------ schedule and series
  // A framework's series from the listing, oldest first: every complete
  // packet, verified here, must name the one before it.
  async function seriesCheck(framework) {
    const list = JSON.parse(await api("GET", `${base}/compliance-reports?framework=${encodeURIComponent(framework)}&limit=200`)).reports
      .filter((r) => r.status === "complete").reverse();
    if (list.length === 0) return { ok: true, text: "no packets yet", list };
    let previous = null;
    for (const r of list) {
      const text = await api("GET", `${base}/compliance-reports/${encodeURIComponent(r.report_id)}`);
      const v = await verify(text);
      if (!v.ok) return { ok: false, text: `${r.report_id}: not verified (${v.why})`, list };
      const body = JSON.parse(text);
      const link = body.packet.series ? body.packet.series.previous_canonical_sha256 : undefined;
      if (link === undefined) { previous = body.signature.canonical_sha256; continue; } // from before series
      if (previous !== null && link !== previous) return { ok: false, text: `${r.report_id} does not follow the packet before it`, list };
      previous = body.signature.canonical_sha256;
    }
    const more = list.length === 200 ? " (the latest 200)" : "";
    return { ok: true, text: `${list.length} packets linked${more}`, list };
  }

  async function latestChange(list) {
    if (list.length < 2) return null;
    const [older, newer] = list.slice(-2);
    const d = JSON.parse(await api("GET", `${base}/compliance-reports/${encodeURIComponent(newer.report_id)}/diff?against=${encodeURIComponent(older.report_id)}`));
    const regressed = d.controls.filter((c) => c.change === "regression").map((c) => c.control_id);
    return regressed.length > 0
      ? { ok: false, text: `${regressed.length} regression${regressed.length === 1 ? "" : "s"}: ${regressed.join(", ")}` }
      : { ok: true, text: `no regression (${d.improvements} improved)` };
  }

  async function loadSchedule() {
    const view = JSON.parse(await api("GET", `${base}/compliance-schedule`));
    document.getElementById("cadence").value = view.cadence;
    const body = document.querySelector("#schedule tbody");
    body.replaceChildren();
    for (const s of view.subscriptions) {
      const tr = el("tr");
      tr.dataset.framework = s.framework;
      tr.append(el("td", s.framework, "mono"));
      tr.append(el("td", s.paused ? `paused since ${s.paused_at}` : `${s.next_period_start} – ${s.next_period_end}, due ${s.next_run_at}`));
      const last = el("td");
      if (s.last_run) {
        last.append(s.last_run.state === "done" ? badge("Done", "ok") : badge(`Failed ×${s.last_run.attempts}`, "bad"));
        last.append(` ${s.last_run.period_start} – ${s.last_run.period_end}`);
        if (s.last_run.last_error) last.title = s.last_run.last_error;
      } else {
        last.append(el("span", "none yet", "hint"));
      }
      const series = el("td", "checking…", "series");
      const change = el("td", "", "change");
      tr.append(last, series, change);
      const action = el("td");
      const button = el("button", s.paused ? "Resume" : "Pause");
      button.type = "button";
      button.dataset.action = s.paused ? "resume" : "pause";
      button.setAttribute("aria-label", `${s.paused ? "Resume" : "Pause"} the scheduled packets of ${s.framework}`);
      if (!canManage) {
        button.disabled = true;
        button.title = "Only owners and admins can pause schedules";
      } else {
        button.addEventListener("click", async () => {
          button.disabled = true;
          try {
            await api("PUT", `${base}/compliance-subscriptions/${encodeURIComponent(s.framework)}/schedule`, { paused: !s.paused });
            say(s.paused ? `Scheduled ${s.framework} packets resumed.` : `Scheduled ${s.framework} packets paused.`);
            await loadSchedule();
          } catch (e) {
            say(`Could not change the schedule: ${e.message}`, true);
            button.disabled = false;
          }
        });
      }
      action.append(button);
      tr.append(action);
      body.append(tr);
      seriesCheck(s.framework).then(async (c) => {
        series.replaceChildren(badge(c.text, c.ok ? "ok" : "bad"));
        const l = await latestChange(c.list);
        change.replaceChildren(l ? badge(l.text, l.ok ? "ok" : "bad") : el("span", "needs two packets", "hint"));
      }).catch((e) => series.replaceChildren(badge(`cannot check: ${e.message}`, "bad")));
    }
    if (view.subscriptions.length === 0) {
      const tr = el("tr");
      const td = el("td", "No active subscriptions.");
      td.colSpan = 6;
      tr.append(td);
      body.append(tr);
    }
  }

  async function setCadence(event) {
    event.preventDefault();
    const cadence = document.getElementById("cadence").value;
    try {
      await api("PUT", `${base}/compliance-schedule`, { cadence });
      say(`Cadence set to ${cadence}; it applies to periods ending from now on.`);
      await loadSchedule();
    } catch (e) {
      say(`Could not set the cadence: ${e.message}`, true);
    }
  }

  // ------------------------------------------------------------ webhooks
  async function loadWebhooks() {
    if (!canManage) return;
    const list = JSON.parse(await api("GET", `${base}/webhooks`)).webhooks;
    const body = document.querySelector("#webhooks tbody");
    body.replaceChildren();
    for (const h of list) {
      const tr = el("tr");
      tr.dataset.endpoint = h.endpoint_id;
      tr.append(el("td", h.url, "mono"), el("td", h.event_types.join(", ")));
      const d = el("td", `${h.delivered} delivered, ${h.pending} pending, ${h.failed} failed`);
      if (h.last_error) d.title = `last failure: ${h.last_error}`;
      tr.append(d);
      const action = el("td");
      const button = el("button", "Delete");
      button.type = "button";
      button.setAttribute("aria-label", `Delete the webhook endpoint ${h.url}`);
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          await api("DELETE", `${base}/webhooks/${encodeURIComponent(h.endpoint_id)}`);
          say(`Webhook endpoint ${h.url} deleted.`);
          await loadWebhooks();
        } catch (e) {
          say(`Could not delete the endpoint: ${e.message}`, true);
          button.disabled = false;
        }
      });
      action.append(button);
      tr.append(action);
      body.append(tr);
    }
    if (list.length === 0) {
      const tr = el("tr");
      const td = el("td", "No endpoints.");
      td.colSpan = 4;
      tr.append(td);
      body.append(tr);
    }
  }

  async function addWebhook(event) {
    event.preventDefault();
    const form = event.target;
    const url = form.elements.url.value;
    const types = Array.from(form.querySelectorAll('input[name="event_types"]:checked'), (i) => i.value);
    try {
      const created = JSON.parse(await api("POST", `${base}/webhooks`, { url, event_types: types }));
      const secret = document.getElementById("webhook-secret");
      secret.replaceChildren(el("span", "Secret of the new endpoint (shown once; verify deliveries with it): "), el("code", created.secret));
      secret.hidden = false;
      say(`Webhook endpoint ${created.url} added.`);
      form.elements.url.value = "";
      await loadWebhooks();
    } catch (e) {
      say(`Could not add the endpoint: ${e.message}`, true);
    }
  }

  // ------------------------------------------------------------ auditor grants
  async function loadGrants() {
    if (!canManage) return;
    const list = JSON.parse(await api("GET", `${base}/auditor-grants`)).grants;
    const body = document.querySelector("#grants tbody");
    body.replaceChildren();
    for (const g of list) {
      const tr = el("tr");
      tr.dataset.grant = g.grant_id;
      tr.append(el("td", g.username, "mono"), el("td", g.framework), el("td", g.expires_at));
      const state = el("td");
      state.append(g.active ? badge("In force", "ok") : badge(g.revoked_at ? "Revoked" : "Expired", "off"));
      tr.append(state);
      const action = el("td");
      if (g.active) {
        const button = el("button", "Revoke");
        button.type = "button";
        button.setAttribute("aria-label", `Revoke ${g.username}'s access to ${g.framework}`);
        button.addEventListener("click", async () => {
          button.disabled = true;
          try {
            await api("DELETE", `${base}/auditor-grants/${encodeURIComponent(g.grant_id)}`);
            say(`${g.username}'s access revoked.`);
            await loadGrants();
          } catch (e) {
            say(`Could not revoke: ${e.message}`, true);
            button.disabled = false;
          }
        });
        action.append(button);
      }
      tr.append(action);
      body.append(tr);
    }
  }

  async function addGrant(event) {
    event.preventDefault();
    const f = event.target.elements;
    const days = Number(f.days.value) || 30;
    const expires = new Date(Date.now() + days * 86400000).toISOString().replace(/\.\d+Z$/, "Z");
    try {
      const g = JSON.parse(await api("POST", `${base}/auditor-grants`, { username: f.username.value, framework: f.framework.value, expires_at: expires }));
      say(`${g.username} may read the ${g.framework} packets until ${g.expires_at}.`);
      f.username.value = "";
      await loadGrants();
    } catch (e) {
      say(`Could not grant access: ${e.message}`, true);
    }
  }

  // ------------------------------------------------------------ posture
  async function loadPosture() {
    const report = JSON.parse(await api("GET", `${base}/compliance-report`)).report;
    const summary = document.getElementById("posture-summary");
    summary.replaceChildren();
    const rows = [
      ["Services", report.service_count],
      ["All services in the EU", report.all_services_eu_residency ? "yes" : "no"],
      ["Audit log retention", report.audit_log.retention_policy],
      ["Audit log covers since", report.audit_log.oldest_entry_at || "no entries"],
      ["Audit log entries", report.audit_log.entry_count],
      ["Report generated", report.generated_at],
    ];
    for (const [k, v] of rows) summary.append(el("dt", k), el("dd", v));
    const body = document.querySelector("#posture tbody");
    body.replaceChildren();
    const yesno = (b) => (b ? badge("yes", "ok") : badge("no", "bad"));
    for (const s of report.services) {
      const tr = el("tr");
      const name = el("td");
      name.append(el("strong", s.name), el("br"), el("code", s.service_id));
      const residency = el("td");
      residency.append(yesno(s.eu_residency));
      const cells = [name, el("td", `${s.zones.join(", ")} (${s.region})`), residency];
      for (const flag of [s.storage_encrypted, s.backup_encryption_enabled, s.tls_enabled]) {
        const td = el("td");
        td.append(yesno(flag));
        cells.push(td);
      }
      cells.push(el("td", s.backups.last_completed_at ? `${s.backups.last_completed_at} (${s.backups.last_backup_type})` : "never"));
      cells.push(el("td", s.backups.schedule_enabled ? `${s.backups.schedule_cron || "enabled"}, kept ${s.backups.retention_days ?? "?"} days` : "disabled"));
      tr.append(...cells);
      body.append(tr);
    }
  }

  if (auditor) {
    // An outside auditor's view: the packets of the grant, read-only.
    loadPackets().catch((e) => say(`Could not load the page: ${e.message}`, true));
    return;
  }
  document.getElementById("generate").addEventListener("submit", generate);
  document.getElementById("cadence-form").addEventListener("submit", setCadence);
  if (canManage) {
    document.getElementById("webhook-form").addEventListener("submit", addWebhook);
    document.getElementById("grant-form").addEventListener("submit", addGrant);
  }
  Promise.all([loadSubscriptions(), loadPackets(), loadSchedule(), loadWebhooks(), loadGrants(), loadPosture()]).catch((e) => say(`Could not load the page: ${e.message}`, true));
})();
