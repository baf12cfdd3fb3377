// /nodes/{id}/settings: the node's settings file as a form, grouped by section. Only the
// keys changed are sent (PUT .../config with if_version); what applied at once and what
// waits for a restart is shown, and a refused value's message sits next to its field.
"use strict";
nav("");

const NODE = pageData().node_id;
const configUrl = `/api/v1/nodes/${encodeURIComponent(NODE)}/config`;
const MASK = "**********";
let doc = null;
let fields = [];  // {key, kind, original, input}
const openSections = new Set();  // kept open across a reload of the document

// Leaves of the nested settings as [dotted key, value]; a table is walked into, anything
// else (a list, an empty table) is one field.
function leaves(obj, prefix) {
  const out = [];
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length) out.push(...leaves(v, key));
    else out.push([key, v]);
  }
  return out;
}

function kindOf(value) {
  if (typeof value === "boolean") return "bool";
  if (typeof value === "number") return "number";
  if (value === MASK) return "secret";
  if (typeof value === "string") return "text";
  if (value === null) return "unset";
  return "json";
}

function domId(key) { return "f-" + key.replace(/[^A-Za-z0-9_-]/g, "-"); }

function fieldHtml(key, label, value, kind) {
  const id = domId(key);
  const hints = [];
  if (doc.environment_overrides.includes(key)) hints.push("Set by the node's environment, which wins over the file.");
  if (doc.restart_required.includes(key)) hints.push("Changed in the file; waits for the agent to restart.");
  const hint = hints.length ? `<span class="hint" id="${id}-hint">${esc(hints.join(" "))}</span>` : "";
  const described = `aria-describedby="${id}-error${hints.length ? ` ${id}-hint` : ""}"`;
  const common = `id="${id}" name="${esc(key)}" data-key="${esc(key)}" ${described}`;
  let input;
  if (kind === "bool") input = `<input type="checkbox" ${common}${value ? " checked" : ""}>`;
  else if (kind === "number") input = `<input type="number" step="any" inputmode="decimal" ${common} value="${esc(String(value))}">`;
  else if (kind === "secret") input = `<input type="password" ${common} value="" placeholder="unchanged (type a new one to replace it)" autocomplete="new-password">`;
  else if (kind === "unset") input = `<input type="text" ${common} value="" placeholder="not set (default)" autocomplete="off">`;
  else if (kind === "json") input = `<input type="text" ${common} value="${esc(JSON.stringify(value))}" autocomplete="off" spellcheck="false">`;
  else input = `<input type="text" ${common} value="${esc(value)}" autocomplete="off" spellcheck="false">`;
  const err = `<p class="field-error" id="${id}-error" data-error-for="${esc(key)}"></p>`;
  if (kind === "bool") return `<div class="field checkbox">${input}<label for="${id}">${esc(label)}</label>${hint}${err}</div>`;
  return `<div class="field"><label for="${id}">${esc(label)}</label>${input}${hint}${err}</div>`;
}

document.addEventListener("toggle", (ev) => {
  const d = ev.target;
  if (!(d instanceof HTMLDetailsElement) || !d.dataset.section) return;
  if (d.open) openSections.add(d.dataset.section); else openSections.delete(d.dataset.section);
}, true);

function render() {
  $("title").textContent = `Settings of ${NODE}`;
  document.title = `camfleet: settings of ${NODE}`;
  $("file").innerHTML = `<dt>File</dt><dd>${trunc(doc.path)}</dd><dt>Version</dt><dd id="version">${doc.version}</dd>` +
    `<dt>Written</dt><dd>${esc(doc.written_at ? fmtTime(doc.written_at) : "by hand")}</dd>` +
    (doc.restart_required.length ? `<dt>Waiting</dt><dd class="warn">${esc(doc.restart_required.join(", "))}: restart the agent to take them</dd>` : "");
  const sections = new Map([["general", []]]);
  for (const [key, value] of leaves(doc.settings, "")) {
    const dot = key.indexOf(".");
    const section = dot < 0 ? "general" : key.slice(0, dot);
    if (!sections.has(section)) sections.set(section, []);
    sections.get(section).push([key, dot < 0 ? key : key.slice(dot + 1), value]);
  }
  let html = "";
  for (const [section, items] of sections) {
    if (!items.length) continue;
    // Each section folds: a node has some hundred settings, too long a page on a phone.
    const waiting = items.filter(([key]) => doc.restart_required.includes(key)).length;
    html += `<details class="section" data-section="${esc(section)}"${openSections.has(section) ? " open" : ""}>` +
      `<summary>${esc(section)} <span class="muted">(${items.length})</span>${waiting ? ` <span class="warn">${waiting} waiting for a restart</span>` : ""}</summary>` +
      `<fieldset><legend class="visually-hidden">${esc(section)}</legend>` +
      items.map(([key, label, value]) => fieldHtml(key, label, value, kindOf(value))).join("") + "</fieldset></details>";
  }
  $("sections").innerHTML = html;
  fields = leaves(doc.settings, "").map(([key, value]) => ({
    key, kind: kindOf(value), original: value, input: $("sections").querySelector(`[data-key="${CSS.escape(key)}"]`),
  }));
}

// What a field holds now, or undefined when it is to be left as it is.
function current(f) {
  const raw = f.input.value;
  switch (f.kind) {
    case "bool": return f.input.checked;
    case "number": {
      if (raw.trim() === "") return null;  // back to the default
      const n = Number(raw);
      return Number.isFinite(n) ? n : raw;  // the node says what is wrong with it
    }
    case "secret": return raw === "" ? undefined : raw;
    case "unset": case "json": {
      if (raw.trim() === "") return f.kind === "unset" ? undefined : null;
      try { return JSON.parse(raw); } catch (e) { return raw; }
    }
    default: return raw;
  }
}

function changes() {
  const settings = {};
  const keys = [];
  for (const f of fields) {
    const v = current(f);
    if (v === undefined || JSON.stringify(v) === JSON.stringify(f.original)) continue;
    keys.push(f.key);
    const parts = f.key.split(".");
    let at = settings;
    for (const p of parts.slice(0, -1)) at = at[p] = at[p] || {};
    at[parts[parts.length - 1]] = v;
  }
  return {settings, keys};
}

function clearErrors() {
  for (const p of document.querySelectorAll(".field-error")) p.textContent = "";
  for (const i of document.querySelectorAll("[aria-invalid]")) i.removeAttribute("aria-invalid");
}

function list(keys) { return keys.length ? keys.join(", ") : "none"; }

$("settings").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clearErrors();
  showMessage($("message"), "");
  const {settings, keys} = changes();
  if (!keys.length) { showMessage($("result"), "Nothing changed."); return; }
  $("save").disabled = true;
  try {
    const r = await api(configUrl, {method: "PUT", json: {settings, if_version: doc.version}});
    const el = $("result");
    el.className = "msg done";
    el.innerHTML = `<p>Saved (version ${r.version}): ${esc(list(r.changed))}.</p>` +
      `<p>Applied now: <span id="applied">${esc(list(r.applied))}</span></p>` +
      `<p>Needs a restart of the agent: <span id="restart">${esc(list(r.restart_required))}</span></p>` +
      (r.environment_overrides.length ? `<p class="warn">The environment overrides: ${esc(list(r.environment_overrides))}</p>` : "");
    await load();
  } catch (e) {
    showMessage($("result"), "");
    const errors = (e.body && e.body.errors) || [];
    let placed = 0;
    for (const err of errors) {
      const key = String(err.field || "").replace(/^body\.settings\./, "");
      const p = document.querySelector(`[data-error-for="${CSS.escape(key)}"]`);
      if (!p) continue;
      p.textContent = err.message;
      const details = p.closest("details");
      if (details) details.open = true;
      $(domId(key))?.setAttribute("aria-invalid", "true");
      placed++;
    }
    let text = "Nothing was written: " + e.message;
    if (e.status === 409) text = /version/i.test(e.message) ? "Nothing was written: the settings were changed elsewhere since this page loaded. Reload to see them. (" + e.message + ")" : "Nothing was written: " + e.message;
    showMessage($("message"), text, "error");
    if (placed) document.querySelector('[aria-invalid="true"]')?.focus();
  } finally {
    $("save").disabled = false;
  }
});

async function load() {
  try {
    doc = await api(configUrl);
    render();
  } catch (e) {
    showMessage($("message"), "Could not read the node's settings: " + e.message, "error");
  }
}
$("reload").addEventListener("click", () => { clearErrors(); showMessage($("result"), ""); showMessage($("message"), ""); load(); });
load();
