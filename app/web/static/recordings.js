// /recordings: every recording the fleet knows, filtered by session and node, a page at
// a time, with its SHA-256, offload state and downloads.
"use strict";
nav("/recordings");

const PAGE = 100;
const params = new URLSearchParams(location.search);
let shown = 0;

function row(r) {
  const m = r.manifest;
  return `<tr data-recording="${r.id}">` +
    cell("File", trunc(r.file_name), "file") +
    cell("Session", `<a href="/sessions/${encodeURIComponent(r.session_id)}" class="trunc" title="${esc(r.session_id)}">${esc(r.session_id)}</a>`) +
    cell("Node", `${esc(m.cam_id)} <small class="muted trunc" title="${esc(r.node_id)}">${esc(r.node_id)}</small>`) +
    cell("Size", `<span class="size">${esc(fmtBytes(r.size_bytes))}</span>`) +
    cell("Frames", `${m.frame_count}${m.dropped_frames ? ` <span class="warn">${m.dropped_frames} dropped</span>` : ""} <small class="muted">${m.duration_s.toFixed(1)} s</small>`) +
    cell("SHA-256", shaHtml(r.sha256, r.file_name)) +
    cell("Offload", archiveHtml(r.archive_state, r.offloaded, r.corrupt_copies)) +
    cell("Download", downloadLinks(r)) +
    "</tr>";
}

function query(offset) {
  const q = new URLSearchParams({limit: String(PAGE), offset: String(offset)});
  if ($("f-session").value) q.set("session_id", $("f-session").value);
  if ($("f-node").value) q.set("node_id", $("f-node").value);
  return q;
}

async function load(append) {
  const offset = append ? shown : 0;
  try {
    const body = await api(`/api/v1/recordings?${query(offset)}`);
    const rows = body.recordings || [];
    const tbody = $("recordings").querySelector("tbody");
    if (append) tbody.insertAdjacentHTML("beforeend", rows.map(row).join(""));
    else tbody.innerHTML = rows.map(row).join("");
    shown = offset + rows.length;
    const total = body.total ?? shown;
    $("range").textContent = total ? `${shown} of ${total}` : "No recordings match.";
    $("more").hidden = shown >= total;
    showMessage($("message"), "");
  } catch (e) {
    showMessage($("message"), "Could not load the recordings: " + e.message, "error");
  }
}

function addOption(select, value, label) {
  const o = document.createElement("option");
  o.value = value; o.textContent = label;
  select.appendChild(o);
}

// The filters' choices: recent sessions and joined nodes; one named in the address is
// kept even when it is not among them.
async function fillFilters() {
  const [sessions, nodes] = await Promise.all([
    api("/api/v1/sessions?limit=200").catch(() => ({sessions: []})),
    api("/api/v1/nodes").catch(() => ({nodes: []})),
  ]);
  for (const s of sessions.sessions || []) addOption($("f-session"), s.session_id, `${fmtTime(s.created_at)} ${s.name || s.session_id}`);
  for (const n of nodes.nodes || []) addOption($("f-node"), n.node_id, `${n.cam_id || ""} ${n.node_id}`.trim());
  for (const [key, select] of [["session_id", $("f-session")], ["node_id", $("f-node")]]) {
    const want = params.get(key);
    if (!want) continue;
    if (![...select.options].some(o => o.value === want)) addOption(select, want, want);
    select.value = want;
  }
}

function onFilter() {
  const q = new URLSearchParams();
  if ($("f-session").value) q.set("session_id", $("f-session").value);
  if ($("f-node").value) q.set("node_id", $("f-node").value);
  history.replaceState(null, "", q.toString() ? `?${q}` : location.pathname);
  load(false);
}
$("f-session").addEventListener("change", onFilter);
$("f-node").addEventListener("change", onFilter);
$("filters").addEventListener("submit", (ev) => { ev.preventDefault(); onFilter(); });
$("more").addEventListener("click", () => load(true));
fillFilters().then(() => load(false));
