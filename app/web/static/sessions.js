// /sessions: the stored sessions, newest first, a page at a time.
"use strict";
nav("/sessions");

const PAGE = 25;
let offset = Math.max(0, parseInt(new URLSearchParams(location.search).get("offset") || "0", 10) || 0);

function nodesHtml(s) {
  const nodes = s.nodes || [];
  const started = nodes.filter(n => n.start && n.start.ok).length;
  const refused = nodes.filter(n => n.start && !n.start.ok).length;
  let out = `<span class="node-count">${nodes.length}</span> · ${started} started`;
  if (refused) out += `, <span class="bad">${refused} refused</span>`;
  return out;
}

function stateHtml(s) {
  const cls = {stopped: "ok", recording: "warn", starting: "warn", stopping: "warn", failed: "bad", aborted: "bad"}[s.state] || "";
  let out = `<span class="state ${cls}">${esc(s.state)}</span>`;
  if (s.end_reason) out += ` <span class="muted">${esc(s.end_reason)}</span>`;
  return out;
}

function row(s) {
  const name = s.name || s.session_id;
  return `<tr data-session="${esc(s.session_id)}">` +
    cell("Started", `<time datetime="${esc(s.created_at)}">${esc(fmtTime(s.created_at))}</time>`) +
    cell("Name", `<a href="/sessions/${encodeURIComponent(s.session_id)}" class="trunc" title="${esc(name)}">${esc(name)}</a>` +
      (s.name ? `<br><small class="muted trunc" title="${esc(s.session_id)}">${esc(s.session_id)}</small>` : "")) +
    cell("State", stateHtml(s)) +
    cell("Nodes", nodesHtml(s)) +
    cell("Start skew", skewHtml(s) + ((s.skew_warnings || []).length ? ` <span class="warn">⚠ ${s.skew_warnings.length}</span>` : "")) +
    cell("Offload", offloadSummary(s.nodes || [])) +
    "</tr>";
}

async function load() {
  try {
    const body = await api(`/api/v1/sessions?limit=${PAGE}&offset=${offset}`);
    const rows = body.sessions || [];
    $("sessions").querySelector("tbody").innerHTML = rows.map(row).join("");
    const total = body.total ?? rows.length;
    $("range").textContent = rows.length ? `${offset + 1}–${offset + rows.length} of ${total}` : (total ? `none past ${total}` : "No sessions yet: start one from the dashboard.");
    $("newer").disabled = offset === 0;
    $("older").disabled = offset + rows.length >= total;
    showMessage($("message"), "");
  } catch (e) {
    showMessage($("message"), "Could not load the sessions: " + e.message, "error");
  }
}

function go(to) {
  offset = Math.max(0, to);
  history.replaceState(null, "", offset ? `?offset=${offset}` : location.pathname);
  load();
}
$("newer").addEventListener("click", () => go(offset - PAGE));
$("older").addEventListener("click", () => go(offset + PAGE));
load();
