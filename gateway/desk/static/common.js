/* What every desk page shares: language, the session and its CSRF token, API calls. */
"use strict";

const LANG_KEY = "tongban.desk.lang";

const Desk = {
  lang: "zh",
  session: null,
  csrf: "",

  t(key, vars) {
    const table = window.DESK_TEXT[Desk.lang] || window.DESK_TEXT.zh;
    let text = table[key] !== undefined ? table[key] : (window.DESK_TEXT.zh[key] || key);
    if (vars) {
      for (const [name, value] of Object.entries(vars)) {
        text = text.split("{" + name + "}").join(String(value));
      }
    }
    return text;
  },

  /* Both languages of a {zh, en} pair, or the one in force. */
  pick(pair) {
    if (!pair) return "";
    if (typeof pair === "string") return pair;
    return (Desk.lang === "en" ? pair.en : pair.zh) || pair.zh || pair.en || "";
  },

  applyText(root) {
    const scope = root || document;
    scope.querySelectorAll("[data-i18n]").forEach((el) => {
      el.textContent = Desk.t(el.getAttribute("data-i18n"));
    });
    scope.querySelectorAll("[data-i18n-attr]").forEach((el) => {
      for (const pair of el.getAttribute("data-i18n-attr").split(";")) {
        const [attr, key] = pair.split(":");
        el.setAttribute(attr, Desk.t(key));
      }
    });
    document.documentElement.lang = Desk.lang === "en" ? "en" : "zh-CN";
    const lang = document.getElementById("lang");
    if (lang) lang.setAttribute("lang", Desk.lang === "en" ? "zh-CN" : "en");
    const title = document.body.getAttribute("data-title");
    document.title = Desk.t(title || "app.title");
  },

  setLang(lang) {
    Desk.lang = lang === "en" ? "en" : "zh";
    try { localStorage.setItem(LANG_KEY, Desk.lang); } catch (e) { /* private mode */ }
    Desk.applyText();
    document.dispatchEvent(new CustomEvent("desk:lang"));
  },

  initLang() {
    let saved = null;
    try { saved = localStorage.getItem(LANG_KEY); } catch (e) { saved = null; }
    Desk.lang = saved === "en" ? "en" : "zh";
    Desk.applyText();
    const button = document.getElementById("lang");
    if (button) {
      button.addEventListener("click", () => Desk.setLang(Desk.lang === "en" ? "zh" : "en"));
    }
  },

  /* Calls a desk API; resolves with the JSON body or throws {status, code, detail, ...}. */
  async api(method, path, body) {
    const headers = { "Accept": "application/json" };
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      headers["X-CSRF-Token"] = Desk.csrf;
    }
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (e) {
      throw { status: 0, code: "network", detail: "" };
    }
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      const problem = data || {};
      throw {
        status: response.status,
        code: problem.code || "internal",
        detail: problem.detail || "",
        fields: problem.fields || {},
        retryAfter: Number(response.headers.get("Retry-After") || "0"),
      };
    }
    return data;
  },

  async loadSession() {
    const s = await Desk.api("GET", "/desk/api/session");
    Desk.session = s;
    Desk.csrf = s.csrf;
    const node = document.getElementById("node-name");
    if (node && s.node) node.textContent = s.node.name + " · " + s.node.id;
    const demo = document.getElementById("demo-note");
    if (demo) demo.hidden = !(s.node && s.node.demo) || s.signed_in;
    return s;
  },

  /* A problem as words for staff, in the language in force. */
  errorText(err) {
    switch (err.code) {
      case "sign_in_failed": return Desk.t("err.sign_in_failed");
      case "sign_in_locked":
        return Desk.t("err.sign_in_locked", { minutes: Math.max(1, Math.ceil((err.retryAfter || 60) / 60)) });
      case "session_required": return Desk.t("err.session_required");
      case "forbidden": return Desk.t("err.forbidden");
      case "network": return Desk.t("err.network");
      case "validation_failed": {
        const fields = Object.values(err.fields || {}).join("; ");
        return Desk.t("err.validation_failed", { detail: fields || err.detail });
      }
      default: return Desk.t("err.other", { code: err.code, detail: err.detail });
    }
  },

  showError(el, err) {
    el.textContent = typeof err === "string" ? err : Desk.errorText(err);
    el.hidden = false;
  },

  clearError(el) {
    el.textContent = "";
    el.hidden = true;
  },

  showWho() {
    const who = document.getElementById("who");
    const out = document.getElementById("sign-out");
    const s = Desk.session;
    if (!who || !out) return;
    if (s && s.signed_in) {
      who.textContent = Desk.t("who", { user: s.user, role: Desk.t("role." + s.role) });
      who.hidden = false;
      out.hidden = false;
    } else {
      who.hidden = true;
      out.hidden = true;
    }
  },

  wireSignOut() {
    const out = document.getElementById("sign-out");
    if (!out) return;
    out.addEventListener("click", async () => {
      try { await Desk.api("POST", "/desk/api/sign-out", {}); } catch (e) { /* ended anyway */ }
      window.location.assign("/desk/");
    });
  },

  /* "name（code）" in Chinese, "name (code)" in English. */
  withCode(name, code) {
    return Desk.lang === "en" ? `${name} (${code})` : `${name}（${code}）`;
  },

  el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  },

  localTime(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return String(iso);
    const pad = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  },
};

window.Desk = Desk;
