// The Compliance tab. Data goes into the page through textContent only, never
// innerHTML. State-changing requests carry the page's CSRF token header, which
// a page on another site cannot set.
"use strict";

(function () {
  const meta = (name) => document.querySelector(`meta[name="${name}"]`).content;
  const org = meta("vouch-org");
  const csrf = meta("vouch-csrf");
  const canManage = meta("vouch-can-manage") === "yes";
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
      await loadSubscriptions();
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
      tr.append(status, el("td", r.key_id || "", "mono"));
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
      td.colSpan = 8;
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
      await loadPackets();
    } catch (e) {
      say(`Could not generate the packet: ${e.message}`, true);
    } finally {
      button.disabled = false;
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

  document.getElementById("generate").addEventListener("submit", generate);
  Promise.all([loadSubscriptions(), loadPackets(), loadPosture()]).catch((e) => say(`Could not load the page: ${e.message}`, true));
})();
