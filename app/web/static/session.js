// /sessions/{id}: the session's summary, an edit form (PATCH), each node's result, and
// each recording's manifest, SHA-256, offload state and downloads.
"use strict";
nav("/sessions");

const SID = pageData().session_id;
const sessionUrl = `/api/v1/sessions/${encodeURIComponent(SID)}`;
let saved = {name: "", metadata: {}};

function fact(term, html, cls) {
  return `<dt>${esc(term)}</dt><dd${cls ? ` class="${cls}"` : ""}>${html}</dd>`;
}

// A wall-clock instant in ns as an ISO time to the millisecond (a JSON number in ns is
// past what a double holds exactly, so no more digits are claimed than are known).
function nsTime(ns) {
  if (ns == null) return "–";
  const iso = new Date(Math.floor(ns / 1e6)).toISOString();
  return `<time datetime="${iso}">${esc(iso.replace("T", " ").replace("Z", " UTC"))}</time>`;
}

function command(c, okText) {
  if (!c) return '<span class="muted">–</span>';
  if (c.ok) return `<span class="ok">${esc(okText)}</span> <small class="muted">${c.latency_ms.toFixed(0)} ms</small>`;
  const code = c.status_code ? ` (${c.status_code})` : "";
  return `<span class="bad">refused${esc(code)}</span><br><span class="why">${esc(c.error || "no reason given")}</span>`;
}

function began(n, periodMs) {
  if (n.first_frame_ns == null) {
    return n.start && n.start.ok ? '<span class="warn">no recording collected</span>' : '<span class="muted">did not start</span>';
  }
  const late = n.start_late_ns || 0;
  let out = late > 0
    ? `<span class="${periodMs && late / 1e6 > periodMs ? "bad" : "warn"} late">started ${esc(fmtNs(late))} late</span>`
    : '<span class="ok">started on time</span>';
  out += `<br><small>${nsTime(n.first_frame_ns)}</small>`;
  return out;
}

function renderSummary(s) {
  const name = s.name || s.session_id;
  $("title").textContent = name;
  document.title = "camfleet: " + name;
  $("sid").textContent = s.session_id;
  $("sid").title = s.session_id;
  const state = esc(s.state) + (s.end_reason ? ` <span class="muted">(${esc(s.end_reason)})</span>` : "");
  const notes = Object.entries(s.metadata || {}).map(([k, v]) => fact(k, esc(v), "note")).join("");
  $("summary").innerHTML =
    fact("State", `<span class="session-state">${state}</span>`) +
    fact("Created", esc(fmtTime(s.created_at))) +
    fact("Start at", `${esc(fmtTime(s.start_at))} <small class="muted">lead ${s.lead_ms} ms, ${esc(s.mode)}</small>`) +
    fact("Stopped", esc(fmtTime(s.stopped_at))) +
    fact("Start skew", skewHtml(s)) +
    fact("Frame period", s.frame_period_ms == null ? "–" : fmtMs(s.frame_period_ms)) +
    fact("Last edited", s.edited_at ? `<span class="edited">${esc(fmtTime(s.edited_at))}</span>` : '<span class="muted">never</span>') +
    notes;
  $("skew-warnings").innerHTML = (s.skew_warnings || []).map(w => `<li class="warn skew-warning">${esc(w)}</li>`).join("");
  const archived = (s.nodes || []).some(n => n.archive_state === "archived" || n.archive_state === "confirmed");
  $("archive-links").innerHTML = archived
    ? `<a class="zip" href="${sessionUrl}/archive?format=zip" download>Whole session (zip)</a><a class="tar" href="${sessionUrl}/archive?format=tar" download>(tar)</a>`
    : "";
}

function renderNodes(s) {
  const rows = (s.nodes || []).map(n => `<tr data-node="${esc(n.node_id)}">` +
    cell("Camera", `<strong>${esc(n.cam_id || "?")}</strong> <small class="muted trunc" title="${esc(n.node_id)}">${esc(n.node_id)}</small>`) +
    cell("Start", command(n.start, "armed") + (n.abort ? `<br>abort: ${command(n.abort, "done")}` : ""), "start") +
    cell("Began", began(n, s.frame_period_ms), "began") +
    cell("Beep", command(n.beep, "played")) +
    cell("Stop", command(n.stop, "stopped"), "stop") +
    cell("Frames", n.frame_count == null ? "–" : `${n.frame_count}${n.dropped_frames ? ` <span class="warn">${n.dropped_frames} dropped</span>` : ""}`) +
    "</tr>").join("");
  $("nodes").querySelector("tbody").innerHTML = rows || `<tr><td colspan="6">No node took part.</td></tr>`;
}

function renderRecordings(recs) {
  if (!recs.length) { $("recordings").innerHTML = '<p class="muted">No recording collected from this session.</p>'; return; }
  $("recordings").innerHTML = recs.map(r => {
    const m = r.manifest;
    const manifestLink = r.download_url ? ` <a class="manifest" href="/api/v1/recordings/${r.id}/manifest">manifest</a>` : "";
    return `<article class="recording" data-recording="${r.id}" data-node="${esc(r.node_id)}">
      <h3>${esc(m.cam_id)} ${trunc(r.file_name, "span")}</h3>
      <dl class="facts">
        ${fact("First frame", nsTime(m.first_frame_ns))}
        ${fact("Frames", `${m.frame_count}${m.dropped_frames ? ` <span class="warn">${m.dropped_frames} dropped</span>` : ""} at ${m.fps} fps`)}
        ${fact("Duration", `${m.duration_s.toFixed(2)} s`)}
        ${fact("Video", `${m.width}×${m.height} ${esc(m.codec)} ${esc(fmtRate(m.bitrate_bps))}`)}
        ${fact("Size", esc(fmtBytes(r.size_bytes)))}
        ${fact("Clock", `offset ${esc(fmtNs(m.clock_offset_ns))}, bound ${m.clock_error_bound_ns == null ? '<span class="warn">unknown</span>' : esc(fmtNs(m.clock_error_bound_ns))}${m.clock_synchronized ? "" : ' <span class="warn">not synchronized</span>'}`)}
        ${fact("Reference", m.clock_reference ? trunc(m.clock_reference) : "–")}
        ${fact("SHA-256", shaHtml(r.sha256, r.file_name))}
        ${fact("Offload", archiveHtml(r.archive_state, r.offloaded, r.corrupt_copies))}
        ${fact("Download", downloadLinks(r) + manifestLink)}
      </dl>
    </article>`;
  }).join("");
}

// The notes as editable rows: a key and a value each, with a remove button.
let noteSeq = 0;
function noteRow(key, value) {
  const i = noteSeq++;
  const div = document.createElement("div");
  div.className = "note-row";
  div.innerHTML = `<label for="note-key-${i}">Note<input type="text" id="note-key-${i}" class="note-key" maxlength="40" value="${esc(key)}" autocomplete="off"></label>` +
    `<label for="note-value-${i}">Value<input type="text" id="note-value-${i}" class="note-value" maxlength="500" value="${esc(value)}" autocomplete="off"></label>` +
    `<button type="button" class="remove-note" aria-label="Remove the note ${esc(key || "(new)")}">Remove</button>`;
  div.querySelector(".remove-note").addEventListener("click", () => { div.remove(); });
  return div;
}

function fillForm(s) {
  saved = {name: s.name || "", metadata: Object.assign({}, s.metadata || {})};
  $("name").value = saved.name;
  const notes = $("notes");
  notes.innerHTML = "";
  for (const [k, v] of Object.entries(saved.metadata)) notes.appendChild(noteRow(k, v));
}

function clearErrors() {
  for (const id of ["name-error", "notes-error"]) $(id).textContent = "";
  $("name").removeAttribute("aria-invalid");
}

$("add-note").addEventListener("click", () => {
  const row = noteRow("", "");
  $("notes").appendChild(row);
  row.querySelector(".note-key").focus();
});

$("edit").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clearErrors();
  const body = {};
  const name = $("name").value.trim();
  if (name !== saved.name) body.name = name;
  const now = {};
  for (const row of $("notes").querySelectorAll(".note-row")) {
    const k = row.querySelector(".note-key").value.trim();
    const v = row.querySelector(".note-value").value.trim();
    if (!k && !v) continue;
    if (!k) { $("notes-error").textContent = "Every note needs a name."; return; }
    now[k] = v;
  }
  const patch = {};
  for (const k of Object.keys(saved.metadata)) if (!(k in now)) patch[k] = null;
  for (const [k, v] of Object.entries(now)) if (saved.metadata[k] !== v) patch[k] = v;
  if (Object.keys(patch).length) body.metadata = patch;
  if (!Object.keys(body).length) { showMessage($("edit-message"), "Nothing changed."); return; }
  $("save").disabled = true;
  try {
    const s = await api(sessionUrl, {method: "PATCH", json: body});
    render(s);
    showMessage($("edit-message"), "Saved.", "done");
  } catch (e) {
    for (const err of (e.body && e.body.errors) || []) {
      if (err.field === "body.name" || err.field.startsWith("body.name.")) {
        $("name-error").textContent = err.message; $("name").setAttribute("aria-invalid", "true");
      } else if (err.field.startsWith("body.metadata")) {
        $("notes-error").textContent = err.message;
      }
    }
    showMessage($("edit-message"), "Not saved: " + e.message, "error");
  } finally {
    $("save").disabled = false;
  }
});

function render(s) {
  renderSummary(s);
  renderNodes(s);
  fillForm(s);
}

async function load() {
  try {
    const [s, recs] = await Promise.all([
      api(sessionUrl),
      api(`/api/v1/recordings?session_id=${encodeURIComponent(SID)}`),
    ]);
    render(s);
    renderRecordings(recs.recordings || []);
  } catch (e) {
    showMessage($("message"), (e.status === 404 || e.status === 422 ? "No such session: " : "Could not load the session: ") + e.message, "error");
  }
}
load();
