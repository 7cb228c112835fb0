/* The staff desk: sign in, choose the service item, scan or drop a license, see the verdict,
   print or save the usage record. */
"use strict";

const MAX_FILE_BYTES = 128 * 1024;
const PURPOSE_KEY = "tongban.desk.purpose";
const ICONS = { valid: "✓", invalid: "✕", undetermined: "?" };

let lastResult = null;
let items = [];

function $(id) { return document.getElementById(id); }

function show(id, visible) { $(id).hidden = !visible; }

async function start() {
  Desk.initLang();
  Desk.wireSignOut();
  document.addEventListener("desk:lang", () => {
    Desk.showWho();
    fillItems();
    if (lastResult) render(lastResult);
  });
  $("signin-form").addEventListener("submit", onSignIn);
  $("verify-form").addEventListener("submit", onVerify);
  $("file").addEventListener("change", onFile);
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", onDrop);
  $("purpose").addEventListener("change", () => {
    try { localStorage.setItem(PURPOSE_KEY, $("purpose").value); } catch (e) { /* ignore */ }
    $("scan").focus();
  });
  $("print").addEventListener("click", () => window.print());
  $("save").addEventListener("click", saveReceipt);
  try {
    await Desk.loadSession();
  } catch (err) {
    show("signin", true);
    Desk.showError($("signin-error"), err);
    return;
  }
  await enter();
}

async function enter() {
  const s = Desk.session;
  Desk.showWho();
  if (!s.signed_in) {
    show("signin", true);
    show("desk", false);
    $("user").focus();
    return;
  }
  show("signin", false);
  const next = new URLSearchParams(window.location.search).get("next");
  if (s.role === "auditor") {
    if (next === "audit") { window.location.assign("/desk/audit"); return; }
    show("not-staff", true);
    $("to-audit").hidden = false;
    return;
  }
  if (s.role === "admin") $("to-audit").hidden = false;
  if (next === "audit" && s.role === "admin") { window.location.assign("/desk/audit"); return; }
  show("desk", true);
  await loadItems();
  if ($("purpose").value) $("scan").focus(); else $("purpose").focus();
}

async function onSignIn(event) {
  event.preventDefault();
  const error = $("signin-error");
  Desk.clearError(error);
  const user = $("user").value.trim();
  const password = $("password").value;
  if (!user || !password) {
    Desk.showError(error, Desk.t("err.sign_in_failed"));
    return;
  }
  const button = event.submitter || $("signin-form").querySelector("button");
  button.disabled = true;
  try {
    await Desk.api("POST", "/desk/api/sign-in", { user, password });
    $("password").value = "";
    await Desk.loadSession();
    await enter();
  } catch (err) {
    $("password").value = "";
    Desk.showError(error, err);
    if (err.code === "forbidden") await Desk.loadSession().catch(() => null);
    $("password").focus();
  } finally {
    button.disabled = false;
  }
}

async function loadItems() {
  const data = await Desk.api("GET", "/desk/api/items");
  items = data.items;
  fillItems();
}

function fillItems() {
  const select = $("purpose");
  if (!items.length) return;
  let saved = select.value;
  if (!saved) { try { saved = localStorage.getItem(PURPOSE_KEY) || ""; } catch (e) { saved = ""; } }
  select.replaceChildren(Desk.el("option", { value: "" }, Desk.t("verify.purpose.choose")));
  for (const item of items) {
    const name = Desk.lang === "en" && item.name_en ? item.name_en : item.name;
    select.append(Desk.el("option", { value: item.code }, Desk.withCode(name, item.code)));
  }
  if (items.some((i) => i.code === saved)) select.value = saved;
}

async function onVerify(event) {
  event.preventDefault();
  await verify($("scan").value);
}

async function verify(text) {
  const error = $("verify-error");
  Desk.clearError(error);
  const purpose = $("purpose").value;
  if (!purpose) {
    Desk.showError(error, Desk.t("err.no_purpose"));
    $("purpose").focus();
    return;
  }
  if (!text.trim()) {
    Desk.showError(error, Desk.t("err.empty"));
    $("scan").focus();
    return;
  }
  show("result-empty", false);
  show("verdict", false);
  show("result-detail", false);
  show("result-busy", true);
  $("verify-submit").disabled = true;
  try {
    const result = await Desk.api("POST", "/desk/api/verify", { input: text, purpose });
    lastResult = result;
    render(result);
  } catch (err) {
    show("result-busy", false);
    show("result-empty", true);
    Desk.showError(error, err);
    if (err.code === "session_required") { await Desk.loadSession(); await enter(); return; }
  } finally {
    $("verify-submit").disabled = false;
    $("scan").value = "";
    $("file").value = "";
    $("scan").focus();
  }
}

function render(r) {
  show("result-busy", false);
  show("result-empty", false);
  const box = $("verdict");
  box.className = "verdict verdict-" + r.verdict;
  box.querySelector(".verdict-icon").textContent = ICONS[r.verdict] || "?";
  box.querySelector(".verdict-main").textContent = Desk.t("verdict." + r.verdict);
  box.querySelector(".verdict-sub").textContent = Desk.t("verdict." + r.verdict + ".sub");
  box.hidden = false;

  const reasons = $("reasons");
  reasons.replaceChildren();
  if (!r.reasons.length) reasons.append(Desk.el("li", { class: "reason ok" }, Desk.t("result.no_reasons")));
  for (const reason of r.reasons) {
    const li = Desk.el("li", { class: "reason", "data-code": reason.code });
    li.append(Desk.el("strong", {}, Desk.pick(reason.text)));
    li.append(Desk.el("span", { class: "code" }, reason.code));
    const next = Desk.el("p", { class: "next" });
    next.append(Desk.el("span", { class: "next-label" }, Desk.t("next")));
    next.append(document.createTextNode(Desk.pick(reason.next)));
    li.append(next);
    reasons.append(li);
  }

  const fields = $("fields");
  fields.replaceChildren();
  if (!r.fields.length) fields.append(Desk.el("dd", {}, Desk.t("result.no_fields")));
  for (const f of r.fields) {
    const label = window.DESK_FIELDS[f.name];
    fields.append(Desk.el("dt", {}, label ? label[Desk.lang === "en" ? 1 : 0] : f.name));
    fields.append(Desk.el("dd", { "data-field": f.name }, f.value));
  }
  $("issuer").textContent = r.issuer ? [r.issuer.city, r.issuer.authority].filter(Boolean).join(" · ") : "";
  $("status-at").textContent = r.status_checked_at
    ? Desk.localTime(r.status_checked_at) + (r.status_cached ? Desk.t("result.cached") : "")
    : Desk.t("result.status_never");
  $("purpose-shown").textContent = r.purpose ? Desk.withCode(Desk.pick(r.purpose.name), r.purpose.code) : "";

  const checks = $("checks");
  checks.replaceChildren();
  for (const c of r.checks) {
    const tr = Desk.el("tr", { class: "check-" + c.result });
    tr.append(Desk.el("td", {}, c.name));
    tr.append(Desk.el("td", {}, Desk.t("check." + c.result)));
    tr.append(Desk.el("td", {}, c.detail || c.code || ""));
    checks.append(tr);
  }
  show("result-detail", true);
  renderReceipt(r);
}

function renderReceipt(r) {
  const rc = r.receipt;
  if (!rc) { show("receipt", false); return; }
  $("r-node").textContent = `${rc.node_name} · ${rc.node}`;
  $("r-item").textContent = r.purpose ? Desk.withCode(Desk.pick(r.purpose.name), r.purpose.code) : "";
  $("r-staff").textContent = rc.staff;
  $("r-time").textContent = Desk.localTime(rc.time);
  $("r-verdict").textContent = `${ICONS[r.verdict]} ${Desk.t("verdict." + r.verdict)}`;
  $("r-seq").textContent = String(rc.seq);
  $("r-leaf").textContent = rc.leaf;
  $("r-ref").textContent = rc.ref;
  const img = $("r-qr");
  img.src = rc.qr;
  img.alt = rc.ref;
  show("receipt", true);
}

function saveReceipt() {
  const r = lastResult;
  if (!r || !r.receipt) return;
  const record = {
    kind: "tongban-usage-record",
    ref: r.receipt.ref,
    node: r.receipt.node,
    seq: r.receipt.seq,
    leaf: r.receipt.leaf,
    staff: r.receipt.staff,
    time: r.receipt.time,
    item: r.purpose ? r.purpose.code : null,
    verdict: r.verdict,
    reasons: r.reasons.map((x) => x.code),
  };
  const blob = new Blob([JSON.stringify(record, null, 2) + "\n"], { type: "application/json" });
  const a = Desk.el("a", { href: URL.createObjectURL(blob), download: `usage-record-${r.receipt.node}-${r.receipt.seq}.json` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 0);
}

function readFile(file) {
  const error = $("verify-error");
  Desk.clearError(error);
  if (file.size > MAX_FILE_BYTES) { Desk.showError(error, Desk.t("err.file_too_large")); return; }
  const reader = new FileReader();
  reader.onload = () => verify(String(reader.result || ""));
  reader.readAsText(file);
}

function onFile() {
  const file = $("file").files[0];
  if (file) readFile(file);
}

function onDrop(event) {
  event.preventDefault();
  $("drop").classList.remove("over");
  const file = event.dataTransfer && event.dataTransfer.files[0];
  if (file) readFile(file);
}

document.addEventListener("DOMContentLoaded", start);
