// Hotlane web UI: keyboard triage, labelling without a reload and the live
// queue. The pages work without it; this only makes them quicker.
"use strict";
(function () {
  const help = document.getElementById("help");
  const rows = () => Array.from(document.querySelectorAll(".list [data-id]"));
  let pendingG = false;

  function toggleHelp(show) {
    if (!help) return;
    help.hidden = show === undefined ? !help.hidden : !show;
    if (!help.hidden) document.getElementById("help-close").focus();
  }
  if (help) {
    document.getElementById("help-close").addEventListener("click", () => toggleHelp(false));
  }

  function move(delta) {
    const list = rows();
    if (list.length === 0) return;
    const at = list.indexOf(document.activeElement.closest("[data-id]"));
    const next = list[Math.min(Math.max(at + delta, 0), list.length - 1)];
    if (at === -1) { list[0].focus(); return; }
    next.focus();
    next.scrollIntoView({ block: "nearest" });
  }

  function typing(e) {
    const t = e.target;
    return t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA" || t.isContentEditable);
  }

  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && help && !help.hidden) { toggleHelp(false); return; }
    if (e.ctrlKey || e.metaKey || e.altKey || typing(e)) return;
    if (pendingG) {
      pendingG = false;
      if (e.key === "q") { location.href = "/"; return; }
      if (e.key === "a") { location.href = "/alerts?status=unlabelled"; return; }
    }
    switch (e.key) {
      case "?": toggleHelp(); e.preventDefault(); break;
      case "j": move(1); e.preventDefault(); break;
      case "k": move(-1); e.preventDefault(); break;
      case "g": pendingG = true; break;
      case "Enter": {
        const row = document.activeElement && document.activeElement.closest("[data-href]");
        if (row && document.activeElement === row) location.href = row.dataset.href;
        break;
      }
      case "u": case "n": {
        const row = document.activeElement && document.activeElement.closest("[data-id]");
        const form = row && row.querySelector(".label-form");
        if (!form) return;
        const button = form.querySelector(e.key === "u" ? "button.useful" : "button.noise");
        form.requestSubmit(button);
        e.preventDefault();
        break;
      }
    }
  });

  // Labels go in the background; the row stays, marked, and focus moves on.
  document.addEventListener("submit", async (e) => {
    const form = e.target;
    if (!form.classList.contains("label-form")) return;
    e.preventDefault();
    const body = new FormData(form);
    if (e.submitter && e.submitter.name) body.set(e.submitter.name, e.submitter.value);
    const row = form.closest("[data-id]");
    try {
      const resp = await fetch(form.action, { method: "POST", body: new URLSearchParams(body), headers: { Accept: "application/json" }, credentials: "same-origin" });
      const data = await resp.json();
      if (!resp.ok) throw new Error(data.error && data.error.message || resp.statusText);
      for (const b of form.querySelectorAll("button[name=label]")) {
        const chosen = b.value === data.label;
        b.classList.toggle("chosen", chosen);
        b.setAttribute("aria-pressed", chosen ? "true" : "false");
      }
      row.classList.add("labelled");
      const count = document.getElementById("unlabelled-count");
      if (count && typeof data.unlabelled === "number") {
        count.textContent = String(data.unlabelled);
        count.setAttribute("aria-label", data.unlabelled + " unlabelled alerts");
      }
      const list = rows();
      const next = list[list.indexOf(row) + 1];
      (next || row).focus();
    } catch (err) {
      let msg = row.querySelector(".label-error");
      if (!msg) { msg = document.createElement("p"); msg.className = "error label-error"; msg.setAttribute("role", "alert"); form.after(msg); }
      msg.textContent = "Could not save the label: " + err.message;
    }
  });

  // The live queue: rows arrive over Server-Sent Events.
  const live = document.getElementById("live");
  if (document.body.dataset.page === "queue" && window.EventSource && live) {
    const filters = (document.getElementById("queue") || { dataset: {} }).dataset.filters || "";
    let source;
    let refresh = null;
    const setLive = (up) => {
      live.hidden = false;
      live.classList.toggle("down", !up);
      document.getElementById("live-text").textContent = up ? "live" : "reconnecting";
    };
    const reload = async () => {
      refresh = null;
      const resp = await fetch("/?" + filters, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (!resp.ok) return;
      const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
      const fresh = doc.querySelector("main");
      const focused = document.activeElement && document.activeElement.closest("[data-id]");
      const keep = focused ? focused.dataset.id : null;
      const before = new Set(rows().map((r) => r.dataset.id));
      document.querySelector("main").replaceWith(fresh);
      const count = doc.getElementById("unlabelled-count");
      if (count) document.getElementById("unlabelled-count").textContent = count.textContent;
      for (const r of rows()) if (!before.has(r.dataset.id)) r.classList.add("fresh");
      if (keep) { const again = document.querySelector('[data-id="' + CSS.escape(keep) + '"]'); if (again) again.focus(); }
    };
    const connect = () => {
      source = new EventSource("/events?" + filters);
      source.onopen = () => setLive(true);
      source.onerror = () => setLive(false);
      const changed = () => { if (!refresh) refresh = setTimeout(reload, 50); };
      source.addEventListener("changed", changed);
    };
    connect();
  }
})();
