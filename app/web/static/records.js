// Shared by the sessions, session, recordings and settings pages (on top of common.js).
"use strict";

function pageData() {
  return JSON.parse(document.querySelector('meta[name="page-data"]')?.content || "null") || {};
}

// One table cell: a label for the stacked phone layout, the content in a block.
function cell(label, html, cls) {
  return `<td data-label="${esc(label)}"${cls ? ` class="${cls}"` : ""}><div class="v">${html}</div></td>`;
}

// A long name cut with an ellipsis; the whole of it in the title.
function trunc(text, tag) {
  return `<${tag || "span"} class="trunc" title="${esc(text)}">${esc(text)}</${tag || "span"}>`;
}

// A SHA-256: its first 12 hex digits shown, the whole in the title, and a copy button.
function shaHtml(sha, what) {
  if (!sha) return "–";
  return `<code class="sha" title="${esc(sha)}" data-sha="${esc(sha)}">${esc(sha.slice(0, 12))}…</code> ` +
    `<button type="button" class="small copy" data-copy="${esc(sha)}" aria-label="Copy the SHA-256 of ${esc(what || "the file")}">Copy</button>`;
}

// Copy buttons anywhere on the page. The clipboard API needs a secure context, which a
// phone reaching the coordinator by its LAN address is not: then a selected text area.
document.addEventListener("click", async (ev) => {
  const btn = ev.target.closest?.("button[data-copy]");
  if (!btn) return;
  const text = btn.dataset.copy;
  let ok = false;
  try {
    if (navigator.clipboard && window.isSecureContext) { await navigator.clipboard.writeText(text); ok = true; }
  } catch (e) { ok = false; }
  if (!ok) {
    const ta = document.createElement("textarea");
    ta.value = text; ta.setAttribute("readonly", ""); ta.style.position = "fixed"; ta.style.opacity = "0";
    document.body.appendChild(ta); ta.select();
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    ta.remove();
  }
  const was = btn.textContent;
  btn.textContent = ok ? "Copied" : "Select and copy";
  setTimeout(() => { btn.textContent = was; }, 1500);
});

function fmtMs(ms, digits) {
  if (ms == null) return "–";
  return Number(ms).toFixed(digits ?? 2) + " ms";
}

// "0.41 ms (bound 2.10 ms)"; the bound is null when a recording had none.
function skewHtml(s) {
  if (s.skew_ms == null) return '<span class="muted">–</span>';
  const bound = s.skew_bound_ms == null ? '<span class="warn skew-bound">bound unknown</span>'
    : `<span class="skew-bound">bound ${fmtMs(s.skew_bound_ms)}</span>`;
  const cls = (s.skew_warnings || []).length ? "warn" : "";
  return `<span class="skew ${cls}">${fmtMs(s.skew_ms)}</span> (${bound})`;
}

// The coordinator's copy of a recording, and the node's own flag.
function archiveHtml(state, offloaded, corrupt) {
  const label = {none: "not offloaded", archived: "archived", confirmed: "confirmed", corrupt: "corrupt"}[state] || state || "–";
  let out = `<span class="state ${esc(state || "")}">${esc(label)}</span>`;
  if (corrupt) out += ` <span class="bad">${corrupt} bad cop${corrupt === 1 ? "y" : "ies"} kept</span>`;
  if (offloaded && state === "none") out += ' <span class="muted">(node says offloaded)</span>';
  return out;
}

// A session's offload in one phrase, from its nodes' archive states.
function offloadSummary(nodes) {
  const states = nodes.map(n => n.archive_state).filter(s => s != null);
  if (!states.length) return '<span class="muted">no recordings</span>';
  const count = (s) => states.filter(x => x === s).length;
  const parts = [];
  if (count("confirmed")) parts.push(`<span class="state confirmed">${count("confirmed")} confirmed</span>`);
  if (count("archived")) parts.push(`<span class="state archived">${count("archived")} archived</span>`);
  if (count("corrupt")) parts.push(`<span class="state corrupt">${count("corrupt")} corrupt</span>`);
  if (count("none")) parts.push(`<span class="state none">${count("none")} not offloaded</span>`);
  return `<span class="offload">${parts.join(" ")}</span> <span class="muted">of ${states.length}</span>`;
}

// Where a node's file is relayed from the node itself (while it is online).
function relayUrl(nodeId, fileName) {
  return `/api/v1/nodes/${encodeURIComponent(nodeId)}/recordings/${encodeURIComponent(fileName)}`;
}

function downloadLinks(rec) {
  const links = [];
  if (rec.download_url) links.push(`<a class="download archive" href="${esc(rec.download_url)}" download>archive copy</a>`);
  links.push(`<a class="download relay" href="${esc(relayUrl(rec.node_id, rec.file_name))}" download>from the node</a>`);
  return `<span class="links">${links.join("")}</span>`;
}

function showMessage(el, text, kind) {
  el.className = "msg" + (kind ? " " + kind : "");
  el.textContent = text || "";
}
