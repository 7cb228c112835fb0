/* Auditor pages: chain status, uses of a license, full verification with progress, and
   checking a usage record against the latest signed checkpoint. */
"use strict";

const POLL_MS = 400;
const MAX_POLLS = 3000; /* 20 minutes at most, then the page stops asking */

let lastStatus = null;
let lastSearch = null;
let lastCheck = null;
let lastJob = null;

function $(id) { return document.getElementById(id); }

async function start() {
  Desk.initLang();
  Desk.wireSignOut();
  try {
    const s = await Desk.loadSession();
    if (!s.signed_in) { window.location.assign("/desk/?next=audit"); return; }
  } catch (err) {
    Desk.showError($("status-error"), err);
    return;
  }
  Desk.showWho();
  if (Desk.session.role === "admin") $("to-desk").hidden = false;
  document.addEventListener("desk:lang", () => {
    Desk.showWho();
    if (lastStatus) renderStatus(lastStatus);
    if (lastSearch) renderSearch(lastSearch);
    if (lastCheck) renderCheck(lastCheck);
    if (lastJob) renderJob(lastJob);
  });
  $("refresh").addEventListener("click", loadStatus);
  $("search-form").addEventListener("submit", onSearch);
  $("rc-form").addEventListener("submit", onCheck);
  $("fv-start").addEventListener("click", onFullVerify);
  await loadStatus();
  $("rc-ref").focus();
}

async function loadStatus() {
  Desk.clearError($("status-error"));
  try {
    lastStatus = await Desk.api("GET", "/desk/api/audit/status");
    renderStatus(lastStatus);
  } catch (err) {
    Desk.showError($("status-error"), err);
  }
}

function renderStatus(s) {
  $("st-size").textContent = String(s.size);
  $("st-root").textContent = s.root;
  const cp = s.checkpoint;
  if (!cp) {
    $("st-age").textContent = Desk.t("audit.checkpoint.none");
    $("st-note").textContent = Desk.t("audit.checkpoint.none");
  } else {
    $("st-age").textContent = `${Desk.localTime(cp.time)} (${Desk.t("audit.age.value", { seconds: cp.age_seconds })})`;
    $("st-note").textContent = cp.note;
  }
  const body = $("st-cosig");
  body.replaceChildren();
  const cos = cp ? cp.cosignatures : [];
  if (!cos.length) {
    const tr = Desk.el("tr");
    tr.append(Desk.el("td", { colspan: "3" }, Desk.t("audit.cosig.none")));
    body.append(tr);
  }
  for (const c of cos) {
    const tr = Desk.el("tr");
    const who = c.partner_name ? `${c.partner_name} · ${c.partner}` : c.partner;
    const mark = c.verified ? Desk.t("audit.cosig.verified") : Desk.t("audit.cosig.unverified");
    tr.append(Desk.el("td", {}, `${who} (${mark})`));
    tr.append(Desk.el("td", {}, String(c.size)));
    tr.append(Desk.el("td", {}, Desk.localTime(c.time)));
    body.append(tr);
  }
}

async function onSearch(event) {
  event.preventDefault();
  const error = $("search-error");
  Desk.clearError(error);
  const identifier = $("identifier").value.trim();
  if (!identifier) { $("identifier").focus(); return; }
  try {
    lastSearch = await Desk.api("POST", "/desk/api/audit/search", { identifier });
    renderSearch(lastSearch);
  } catch (err) {
    Desk.showError(error, err);
  }
}

function describe(entry) {
  const m = entry.meta || {};
  const parts = [];
  if (m.purpose) parts.push(m.purpose);
  if (m.verdict) parts.push(Desk.t("verdict." + m.verdict));
  if (entry.code) parts.push(entry.code);
  return parts.join(" · ");
}

function renderSearch(r) {
  const rows = $("search-rows");
  rows.replaceChildren();
  $("search-count").textContent = r.entries.length ? Desk.t("search.count", { n: r.entries.length }) : Desk.t("search.none");
  $("search-table").hidden = !r.entries.length;
  for (const e of r.entries) {
    const tr = Desk.el("tr", { "data-seq": String(e.seq) });
    tr.append(Desk.el("td", {}, String(e.seq)));
    tr.append(Desk.el("td", {}, Desk.localTime(e.ts)));
    tr.append(Desk.el("td", {}, e.event));
    const actor = [e.actor.id, e.actor.sub].filter(Boolean).join(" / ");
    tr.append(Desk.el("td", {}, `${actor} (${e.actor.type})`));
    tr.append(Desk.el("td", { class: "outcome-" + e.outcome }, Desk.t("outcome." + e.outcome)));
    tr.append(Desk.el("td", {}, describe(e)));
    rows.append(tr);
  }
}

async function onCheck(event) {
  event.preventDefault();
  const error = $("rc-error");
  Desk.clearError(error);
  const ref = $("rc-ref").value.trim();
  if (!ref) { $("rc-ref").focus(); return; }
  try {
    lastCheck = await Desk.api("POST", "/desk/api/audit/receipt-check", { ref });
    renderCheck(lastCheck);
  } catch (err) {
    $("rc-verdict").hidden = true;
    $("rc-facts").hidden = true;
    Desk.showError(error, err);
  } finally {
    $("rc-ref").select();
  }
}

function renderCheck(r) {
  const box = $("rc-verdict");
  const state = r.included ? "valid" : (r.pending ? "undetermined" : "invalid");
  box.className = "verdict verdict-" + state;
  box.querySelector(".verdict-icon").textContent = r.included ? "✓" : (r.pending ? "?" : "✕");
  const key = r.included ? "receiptcheck.ok" : (r.pending ? "receiptcheck.pending" : "receiptcheck.bad");
  box.querySelector(".verdict-main").textContent = Desk.t(key);
  box.querySelector(".verdict-sub").textContent = Desk.t(key + ".sub");
  box.hidden = false;
  const facts = $("rc-facts");
  facts.replaceChildren();
  const add = (label, value, mono) => {
    facts.append(Desk.el("dt", {}, label));
    facts.append(Desk.el("dd", mono ? { class: "mono" } : {}, value));
  };
  add(Desk.t("receipt.seq"), String(r.seq));
  add(Desk.t("receipt.leaf"), r.leaf, true);
  if (r.checkpoint) add(Desk.t("receiptcheck.checkpoint"), String(r.checkpoint.size));
  if (r.entry) {
    const e = r.entry;
    add(Desk.t("search.time"), Desk.localTime(e.ts));
    add(Desk.t("search.event"), e.event);
    add(Desk.t("search.actor"), [e.actor.id, e.actor.sub].filter(Boolean).join(" / "));
    add(Desk.t("search.outcome"), Desk.t("outcome." + e.outcome));
    const detail = describe(e);
    if (detail) add(Desk.t("search.detail"), detail);
  }
  facts.hidden = false;
}

async function onFullVerify() {
  const button = $("fv-start");
  button.disabled = true;
  $("fv-result").textContent = "";
  $("fv-result").className = "status-line";
  try {
    let job = await Desk.api("POST", "/desk/api/audit/verify-jobs", {});
    renderJob(job);
    for (let i = 0; i < MAX_POLLS && job.state === "running"; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      job = await Desk.api("GET", "/desk/api/audit/verify-jobs/" + encodeURIComponent(job.job));
      renderJob(job);
    }
  } catch (err) {
    $("fv-result").textContent = Desk.errorText(err);
    $("fv-result").className = "status-line bad";
  } finally {
    button.disabled = false;
  }
}

function renderJob(job) {
  lastJob = job;
  const bar = $("fv-progress");
  bar.hidden = false;
  bar.max = Math.max(1, job.total);
  bar.value = job.done;
  const label = job.state === "running" ? "fullverify.running" : "fullverify.progress";
  $("fv-label").textContent = Desk.t(label, { done: job.done, total: job.total });
  const out = $("fv-result");
  if (job.state === "running") { out.textContent = ""; return; }
  if (job.state === "failed") {
    out.textContent = Desk.t("fullverify.failed", { detail: job.error || "" });
    out.className = "status-line bad";
    return;
  }
  const r = job.result;
  if (r.ok) {
    out.textContent = Desk.t("fullverify.ok", { entries: r.entries, checkpoints: r.checkpoints });
    out.className = "status-line ok";
  } else {
    const bad = r.first_bad || {};
    out.textContent = Desk.t("fullverify.bad", { seq: bad.seq, reason: `${bad.reason}: ${bad.detail || ""}` });
    out.className = "status-line bad";
  }
}

document.addEventListener("DOMContentLoaded", start);
