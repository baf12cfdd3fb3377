// The dashboard (/): a card per camera (L, C, R, then the others), the fleet's controls and a
// panel with each node's answer to the last command. Nodes arrive as server-sent events
// (GET /api/v1/events): a snapshot on every (re)connect, then one event per node that changed.
"use strict";
nav("/");

const POSITION_RANK = {left: 0, centre: 1, right: 2};
// A recording camera's preview is a frame of its running stream (free), refreshed this
// often; an idle camera's would open the camera, which a start could then find busy, so it
// is taken only when the operator asks (the card's Preview button).
const PREVIEW_EVERY_MS = 10000;
const LOW_DISK_MIN = 30;            // minutes of recording left
const LOW_BATTERY_PERCENT = 30;
const HOT_CPU_C = 75;
const OFFSET_OUTLIER_NS = 2e6;      // 2 ms from the fleet's median offset
const BOUND_OUTLIER_FACTOR = 3;     // a bound three times the median (and over 2 ms)
const NET_LABEL = {mesh: "mesh", ap_host: "AP (hosting)", ap_client: "AP (client)", wired: "wired", wifi: "wifi", none: "none"};

let fleetNodes = null;   // node id -> node, from the last snapshot and the events since
let activeSession = null;
let offloadJob = null;
let stream = null, lastHeard = null, staleSince = null;
const previews = {};     // node id -> {url, at, note}

function banner(text, error) { const b = $("banner"); b.textContent = text || ""; b.className = text ? "show" + (error ? " error" : "") : ""; }
function majority(values) {
  const counts = {}; values.forEach(v => counts[v] = (counts[v] || 0) + 1);
  const top = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  // a value is "the majority" only when it is strictly the most common one
  return top.length && (top.length === 1 || top[0][1] > top[1][1]) ? top[0][0] : null;
}
function median(xs) { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; }
function camOf(id) { const n = fleetNodes && fleetNodes.get(id); return n ? n.cam_id : id; }
function rank(n) {
  if (n.position in POSITION_RANK) return POSITION_RANK[n.position];
  const m = /[_-]([LCR])$/i.exec(n.cam_id || ""); return m ? {L: 0, C: 1, R: 2}[m[1].toUpperCase()] : 3;
}
function ordered(nodes) {
  return [...nodes].sort((a, b) => rank(a) - rank(b) || (a.cam_id < b.cam_id ? -1 : a.cam_id > b.cam_id ? 1 : 0) || (a.node_id < b.node_id ? -1 : 1));
}
function profileKey(r) { return `${r.width}x${r.height} ${r.fps} fps ${r.codec} ${fmtRate(r.bitrate_bps)}`; }
function recording(n) { return n.online && n.status && ["recording", "armed"].includes(n.status.recorder.state); }

// What is wrong with each node on its own, and where it disagrees with the others.
function problems(nodes) {
  const out = new Map(nodes.map(n => [n.node_id, []]));
  // odd: a disagreement with the others (or low disk or battery), which marks the card
  const add = (n, text, bad, odd) => out.get(n.node_id).push({text, bad: !!bad, odd: !!odd});
  const live = nodes.filter(n => n.online && n.status);
  const busy = live.filter(recording);
  const profiles = majority(live.map(n => profileKey(n.status.recorder)));
  const versions = majority(live.map(n => n.status.version));
  const synced = live.filter(n => n.status.clock.synchronized && n.status.clock.offset_ns != null);
  const medOffset = synced.length >= 3 ? median(synced.map(n => n.status.clock.offset_ns)) : null;
  const bounds = synced.filter(n => n.status.clock.error_bound_ns != null);
  const medBound = bounds.length >= 3 ? median(bounds.map(n => n.status.clock.error_bound_ns)) : null;
  for (const n of nodes) {
    if (!n.approved) { add(n, "waits for approval"); continue; }
    if (!n.online) { add(n, "offline" + (n.last_error ? ": " + n.last_error : ""), true); continue; }
    const s = n.status; if (!s) continue;
    const r = s.recorder, c = s.clock, d = s.disk, p = s.power;
    if (!recording(n) && busy.length) add(n, `${r.state} while ${busy.length} other${busy.length > 1 ? "s" : ""} record`, true, true);
    if (!c.synchronized && !(n.clock_flags || []).length) add(n, "clock not synchronized", false, synced.length > 0);
    if (medOffset != null && c.synchronized && Math.abs(c.offset_ns - medOffset) > OFFSET_OUTLIER_NS) add(n, `clock offset ${fmtNs(c.offset_ns)} is far from the others (${fmtNs(medOffset)})`, false, true);
    if (medBound != null && c.error_bound_ns != null && c.error_bound_ns > Math.max(2e6, BOUND_OUTLIER_FACTOR * medBound)) add(n, `clock bound ±${fmtNs(c.error_bound_ns)} is wider than the others' (±${fmtNs(medBound)})`, false, true);
    // clock_flags are shown in the card's clock lines
    if (d.alarm) add(n, d.alarm, true, true);
    else if (d.level !== "ok" || d.minutes_left < LOW_DISK_MIN) add(n, `low disk: ${d.minutes_left.toFixed(0)} min left`, d.level === "critical", true);
    const pr = p && p.reading;
    if (p && p.provider !== "none" && !(pr && pr.on_ac) && (["low", "disconnect", "shutdown", "warn"].includes(p.level) || (pr && pr.percent != null && pr.percent < LOW_BATTERY_PERCENT))) add(n, `low battery${pr && pr.percent != null ? ": " + pr.percent.toFixed(0) + " %" : ""}`, p.level !== "warn", true);
    if (s.cpu_temp_c != null && s.cpu_temp_c >= HOT_CPU_C) add(n, `CPU hot: ${s.cpu_temp_c.toFixed(1)} °C`);
    if (profiles && profileKey(r) !== profiles) add(n, `profile ${profileKey(r)} differs from the others (${profiles})`, false, true);
    if (versions && s.version !== versions) add(n, `version ${s.version} differs from the others (${versions})`, false, true);
    if (r.dropped_frames) add(n, `${r.dropped_frames} frame${r.dropped_frames > 1 ? "s" : ""} dropped`);
    if (r.last_error) add(n, "recorder: " + r.last_error, true);
    if (r.camera_busy && !recording(n)) add(n, "camera busy: " + r.camera_busy);
    if (s.network && ["ap_host", "ap_client"].includes(s.network.mode)) add(n, "in AP mode (" + NET_LABEL[s.network.mode] + ")");
  }
  return out;
}

// "CAM_C hosting SOCCER_CAM_C", "CAM_L on SOCCER_CAM_C (62 %)": which AP, and who is on it.
function apText(cam, net) {
  const where = net.ssid ? (net.mode === "ap_host" ? " hosting " : " on ") + net.ssid : " (" + NET_LABEL[net.mode] + ")";
  const m = net.manager;
  return cam + where + (net.signal != null ? ` (${net.signal} %)` : "") + (m && m.last_error ? `; last error: ${m.last_error}` : "");
}

function fleetAlert(nodes) {
  const lines = [];
  const off = nodes.filter(n => n.approved && !n.online);
  if (off.length) lines.push(`Offline: ${off.map(n => n.cam_id).join(", ")}`);
  const ap = nodes.filter(n => n.online && n.status && n.status.network && ["ap_host", "ap_client"].includes(n.status.network.mode));
  if (ap.length) lines.push(`AP mode: ${ap.map(n => apText(n.cam_id, n.status.network)).join(", ")}`);
  const el = $("fleet-alert");
  el.hidden = !lines.length;
  el.innerHTML = lines.length ? `<strong>Check the fleet</strong><ul>${lines.map(l => `<li>${esc(l)}</li>`).join("")}</ul>` : "";
}

function dd(cls, html, title) { return `<dd class="${cls}"${title ? ` title="${esc(title)}"` : ""}>${html}</dd>`; }

// The timelapse line: the daily cycle's state and today's count against the plan, or a
// run started by hand; nothing when neither (most cameras of a match rig).
function timelapseLine(tl) {
  if (!tl) return null;
  const cy = tl.cycle, day = cy && cy.today;
  if (!cy && !tl.running && !tl.last_error) return null;
  const parts = [];
  if (cy) parts.push(cy.state.replace("_", " "));
  else parts.push(tl.running ? "capturing" : "stopped");
  if (tl.running && cy && cy.state !== "capturing") parts.push("a run started by hand");
  parts.push(day ? `${tl.captures_today} of ${day.expected_photos} photos today` : `${tl.captures_today} photos today`);
  if (day && day.start_time) parts.push(`${day.start_time.slice(0, 5)}–${day.end_time.slice(0, 5)}${day.window === "sun" ? " (sun)" : ""}`);
  else if (day && day.note) parts.push(day.note);
  parts.push(`every ${tl.interval_s} s`);
  const error = (cy && cy.error) || tl.last_error;
  const v = tl.last_video;
  const title = v ? `last video ${v.file_name}: ${v.frames} photos` + (cy && cy.last_video_backed_up != null ? (cy.last_video_backed_up ? ", backed up" : ", NOT backed up") : "") : "";
  return {text: parts.join(", "), error, title};
}

function cardBody(n, warnings) {
  const s = n.status, r = s && s.recorder, c = s && s.clock, d = s && s.disk, p = s && s.power, pr = p && p.reading;
  const clock = c ? (c.synchronized ? fmtNs(c.offset_ns) + (c.error_bound_ns != null ? " ± " + fmtNs(c.error_bound_ns) : "") : '<span class="warn">unsynchronized</span>') : "–";
  const clockInfo = c && c.source === "chrony" ? [c.role, c.stratum != null ? "stratum " + c.stratum : "", c.selected_source || c.reference ? "ref " + (c.selected_source || c.reference) : "", c.last_update_age_s != null ? "updated " + c.last_update_age_s.toFixed(0) + " s ago" : ""].filter(Boolean).join(", ") : (c && c.error ? c.error : "");
  const clockTitle = c && c.source === "chrony" ? `RMS offset ${fmtNs(c.rms_offset_ns)}, frequency ${c.frequency_ppm} ppm, skew ${c.skew_ppm} ppm, root delay ${fmtNs(c.root_delay_ns)}, root dispersion ${fmtNs(c.root_dispersion_ns)}, leap ${c.leap_status}; sources: ${(c.sources || []).map(x => x.address + " " + x.state + " reach " + x.reach.toString(8)).join("; ") || "none"}` : "";
  const level = d && d.level ? d.level : "ok";
  const battery = p && p.provider !== "none" ? [pr && pr.percent != null ? pr.percent.toFixed(0) + " %" : "", pr && pr.voltage_v != null ? pr.voltage_v.toFixed(2) + " V" : "", pr && pr.on_ac ? "AC" : "", p.level].filter(Boolean).join(", ") : "";
  const dc = s && s.dashcam, au = s && s.audio, net = s && s.network;
  const dashcam = dc ? [dc.state + (dc.dry_run ? " (dry run)" : ""), dc.pending_upload + " to upload", dc.host_reachable === false ? "NAS unreachable" : ""].filter(Boolean).join(", ") : "";
  const audio = au ? [au.track ? "track on" : "track off", au.tones ? "tones on" : "tones off", au.degraded.length ? "degraded: " + au.degraded.join(", ") : ""].filter(Boolean).join(", ") : "";
  const netText = net ? NET_LABEL[net.mode] + (net.ssid ? " " + net.ssid : "") + (net.signal != null ? `, ${net.signal} %` : "") + (net.interface ? ` (${net.interface})` : "") : "–";
  const mgr = net && net.manager;
  const netTitle = net ? [(net.interfaces || []).map(i => `${i.name}: ${i.kind}, ${i.up ? "up" : "down"}`).join("; "), net.address || "", net.error || "", mgr ? `manager: ${mgr.phase}` + (mgr.target ? " " + mgr.target : "") + (mgr.last_action ? `, last ${mgr.last_action}` : "") + (mgr.last_error ? `, error: ${mgr.last_error}` : "") : ""].filter(Boolean).join(" | ") : "";
  const rows = [
    ["position", dd("position", esc(n.position))],
    ["node", dd("node", `<span class="trunc" title="${esc(n.node_id + " @ " + n.address)}">${esc(n.node_id)} @ ${esc(n.address)}</span>`)],
    ["video", dd("profile", r ? `${r.width}x${r.height}, ${r.fps} fps, ${esc(r.codec)}` : "–", r ? r.profile : "")],
    ["bitrate", dd("bitrate", r ? `${fmtRate(r.bitrate_bps)} configured, ${fmtRate(r.measured_bitrate_bps)} measured` : "–")],
    ["encode", dd("encode", r ? `${r.encode_fps.toFixed(1)} fps, ${r.frames} frames` + (r.dropped_frames ? `, <span class="bad">${r.dropped_frames} dropped</span>` : ", 0 dropped") : "–")],
    ["disk", dd(`disk level-${esc(level)}`, d ? fmtBytes(d.free_bytes) + " free, " + d.minutes_left.toFixed(0) + " min" + (level !== "ok" ? " (" + esc(level) + ")" : "") : "–")],
    ["not offloaded", dd("unoffloaded", d ? `${d.unoffloaded_count || 0} files (${fmtBytes(d.unoffloaded_bytes || 0)})` : "–")],
  ];
  if (battery) rows.push(["battery", `<dd class="battery level-${esc(p.level)}" title="${esc(p.reason)}">${esc(battery)}</dd>`]);
  else if (p) rows.push(["power", dd("power", "mains (no battery)")]);
  rows.push(["CPU", dd("temp", s && s.cpu_temp_c != null ? s.cpu_temp_c.toFixed(1) + " °C" : "–", s && s.cpu_temp_c == null ? "no temperature sensor" : "")]);
  rows.push(["clock", `<dd class="clock" title="${esc(clockTitle)}">${clock}${clockInfo ? `<br><span class="muted clock-info">${esc(clockInfo)}</span>` : ""}</dd>`]);
  (n.clock_flags || []).forEach(f => rows.push(["clock", `<dd class="clock-flag warn">${esc(f)}</dd>`]));
  rows.push(["network", dd("network", esc(netText), netTitle)]);
  rows.push(["version", dd("version", `<span class="trunc" title="${esc(s ? s.version : n.version)}">${esc(s ? s.version : n.version)}</span>`)]);
  const tl = timelapseLine(s && s.timelapse);
  if (tl) rows.push(["timelapse", dd(`timelapse${tl.error ? " warn" : ""}`, esc(tl.text) + (tl.error ? `<br><span class="warn">${esc(tl.error)}</span>` : ""), tl.title)]);
  if (dashcam) rows.push(["dashcam", dd(`dashcam${dc.last_error ? " warn" : ""}`, esc(dashcam), dc.last_error || dc.last_cycle_result || "")]);
  if (audio) rows.push(["audio", dd(`audio${au.track_error || au.last_error ? " warn" : ""}`, esc(audio), au.track_error || au.last_error || "")]);
  if (r && r.profile_notes.length) rows.push(["fallback", dd("warn", r.profile_notes.map(esc).join("<br>"))]);
  if (r && r.last_stop_reason && r.last_stop_reason !== "stopped") rows.push(["last stop", dd("warn", esc(r.last_stop_reason))]);
  return `<dl>${rows.map(([k, v]) => `<dt>${k}</dt>${v}`).join("")}</dl>` +
    (warnings.length ? `<ul class="warnings" aria-label="warnings">${warnings.map(w => `<li class="warning${w.bad ? " bad" : ""}${w.odd ? " odd" : ""}">${esc(w.text)}</li>`).join("")}</ul>` : "");
}

function newCard(n) {
  const el = document.createElement("article");
  el.className = "card"; el.dataset.node = n.node_id;
  const id = encodeURIComponent(n.node_id);
  el.innerHTML = `<h2><span class="cam trunc"></span> <span class="pill"></span></h2><div class="body"></div>
    <figure class="preview"><img alt="" hidden><figcaption></figcaption></figure>
    <div class="actions"><button type="button" class="small" data-preview="${esc(n.node_id)}">Preview</button>
    <a href="/nodes/${id}/live" class="live-link">Live view</a> <a href="/nodes/${id}/settings" class="settings-link">Settings</a>
    <button type="button" class="small stop" data-shutdown="${esc(n.node_id)}">Shut down</button></div>`;
  return el;
}

function renderNodes(nodes) {
  const list = ordered(nodes);
  const online = list.filter(n => n.online).length;
  $("summary").textContent = online + "/" + list.length + " online";
  $("summary").className = "pill" + (list.length && online === list.length ? " online" : "");
  const tracks = list.filter(n => n.online && n.status && n.status.audio).map(n => String(n.status.audio.track));
  if (tracks.length && !$("audio").disabled) $("audio").checked = majority(tracks) === "true";
  fleetAlert(list);
  const warn = problems(list);
  const box = $("cards");
  box.querySelector("p.empty")?.remove();
  const have = new Map([...box.querySelectorAll("article.card")].map(a => [a.dataset.node, a]));
  list.forEach((n, i) => {
    let el = have.get(n.node_id);
    if (!el) el = newCard(n);
    have.delete(n.node_id);
    if (box.children[i] !== el) box.insertBefore(el, box.children[i] || null);
    const w = warn.get(n.node_id) || [];
    const state = !n.approved ? "pending" : !n.online ? "offline" : n.status ? n.status.recorder.state : "unknown";
    el.className = "card" + (n.online ? "" : " offline") + (n.online && w.some(x => x.odd) ? " odd" : "");
    const cam = el.querySelector(".cam"); cam.textContent = n.cam_id; cam.title = n.cam_id;
    const pill = el.querySelector(".pill"); pill.textContent = state; pill.className = "pill " + state;
    el.querySelector(".body").innerHTML = cardBody(n, w);
    el.querySelector("[data-shutdown]").setAttribute("aria-label", "Shut down " + n.cam_id);
    el.querySelector("[data-preview]").setAttribute("aria-label", "Refresh the preview of " + n.cam_id);
    showPreview(el, n.node_id);
  });
  have.forEach(el => el.remove());
  if (!list.length) box.innerHTML = '<p class="empty">No node has joined yet.</p>';
}

function showPreview(el, id) {
  const p = previews[id], img = el.querySelector(".preview img"), cap = el.querySelector(".preview figcaption");
  if (p && p.url && img.src !== p.url) { img.src = p.url; img.alt = "preview of " + camOf(id); }
  img.hidden = !(p && p.url);
  cap.textContent = p ? (p.note || (p.at ? "still from " + p.at.toTimeString().slice(0, 8) : "")) : "";
}

async function fetchPreview(id) {
  const r = await fetch(`/api/v1/nodes/${encodeURIComponent(id)}/preview.jpg`, {credentials: "same-origin"});
  const p = previews[id] || (previews[id] = {});
  if (!r.ok) { const b = await r.json().catch(() => ({})); p.note = "no new still: " + (b.detail || r.status); p.tried = Date.now(); }
  else { if (p.url) URL.revokeObjectURL(p.url); p.url = URL.createObjectURL(await r.blob()); p.at = new Date(); p.note = ""; p.tried = Date.now(); }
  const el = document.querySelector(`article.card[data-node="${CSS.escape(id)}"]`);
  if (el) showPreview(el, id);
}
async function refreshPreviews() {
  if (!fleetNodes || document.hidden) return;
  for (const n of fleetNodes.values()) {
    const p = previews[n.node_id];
    const rec = n.online && n.status && n.status.recorder.state === "recording";
    if (rec && (!p || Date.now() - (p.tried || 0) >= PREVIEW_EVERY_MS)) await fetchPreview(n.node_id).catch(() => {});
  }
}

// ---- the results panel: one row per node for the last command ----
function showResults(title, rows, error) {
  $("results").hidden = false;
  $("results-title").textContent = "Results: " + title;
  $("results-rows").innerHTML = error ? `<tr class="failed"><td>all</td><td class="result">failed</td><td class="detail">${esc(error)}</td></tr>` :
    rows.map(r => `<tr class="${r.ok ? "ok" : r.heldText ? "held" : "failed"}" data-node="${esc(r.node_id)}"><td><span class="trunc" title="${esc(r.node_id)}">${esc(r.cam || camOf(r.node_id))}</span></td>
      <td class="result">${r.ok ? esc(r.okText || "ok") : esc(r.heldText || "failed")}</td><td class="detail">${esc(r.detail || "")}</td></tr>`).join("") ||
    '<tr><td colspan="3">No node answered.</td></tr>';
}
function callRows(nodes, detailOf) {
  return nodes.map(n => ({node_id: n.node_id, ok: n.ok, detail: n.ok ? (detailOf ? detailOf(n) : "") : n.error || ("HTTP " + n.status_code)}));
}
async function command(title, button, run) {
  if (button) button.disabled = true;
  try { await run(); }
  catch (e) { banner(title + " failed: " + e.message, true); showResults(title, [], e.message); }
  if (button) button.disabled = false;
  refresh();
}

// ---- session metadata: free key-value rows ----
function metaRow(key, value) {
  const i = $("meta-rows").children.length + 1;
  const row = document.createElement("div"); row.className = "meta-row";
  row.innerHTML = `<label class="visually-hidden" for="meta-k${i}">detail ${i} name</label><input id="meta-k${i}" class="meta-key" maxlength="40" value="${esc(key)}" placeholder="name" title="1-40 letters, digits, space, _ . -">
    <label class="visually-hidden" for="meta-v${i}">detail ${i} value</label><input id="meta-v${i}" class="meta-value" maxlength="500" value="${esc(value)}" placeholder="value">`;
  $("meta-rows").append(row);
}
function metadata() {
  const out = {};
  $("meta-rows").querySelectorAll(".meta-row").forEach(r => {
    const k = r.querySelector(".meta-key").value.trim(), v = r.querySelector(".meta-value").value.trim();
    if (k && v) out[k] = v;
  });
  return out;
}
["notes", "teams", "location"].forEach(k => metaRow(k, ""));
$("meta-add").onclick = () => { metaRow("", ""); $("meta-rows").lastElementChild.querySelector("input").focus(); };

async function createSession(body, meta) {
  if (!Object.keys(meta).length) return [await api("/api/v1/sessions", {method: "POST", json: body}), ""];
  try { return [await api("/api/v1/sessions", {method: "POST", json: Object.assign({metadata: meta}, body)}), ""]; }
  catch (e) {
    // A coordinator whose session API takes no metadata refuses the field (422): start
    // without it rather than not at all, and say so.
    const extra = ((e.body && e.body.errors) || []).some(x => /(^|\.)metadata$/.test(x.field) && /extra/i.test(x.message));
    if (e.status !== 422 || !extra) throw e;  // a bad key or value: the server's message says which
    return [await api("/api/v1/sessions", {method: "POST", json: body}), "the details were not kept: this coordinator's session API takes none"];
  }
}

$("start-form").onsubmit = (ev) => {
  ev.preventDefault();
  command("Start all", $("start"), async () => {
    const body = {name: $("name").value.trim() || null, mode: $("strict").checked ? "all_or_nothing" : "best_effort", beep: $("beep").checked};
    const [s, note] = await createSession(body, metadata());
    const failed = s.nodes.filter(n => n.start && !n.start.ok);
    const why = failed.map(n => `${n.cam_id || n.node_id}: ${n.start.error}`).join("; ");
    if (s.state === "aborted") banner(`Nothing started (all or nothing): ${why}`, true);
    else banner((failed.length ? `Started on ${s.nodes.length - failed.length} of ${s.nodes.length}: ${why}` : `Recording ${s.name || s.session_id} starts at ${new Date(s.start_at).toLocaleTimeString()}`) + (note ? "; " + note : ""), failed.length > 0 || !!note);
    showResults("Start all", s.nodes.map(n => ({node_id: n.node_id, cam: n.cam_id, ok: !!(n.start && n.start.ok), okText: "started",
      detail: n.start ? (n.start.ok ? `${n.start.latency_ms.toFixed(0)} ms` : n.start.error) : "not asked"})));
  });
};
$("stop").onclick = () => {
  if (!activeSession) return;
  command("Stop all", $("stop"), async () => {
    const s = await api(`/api/v1/sessions/${encodeURIComponent(activeSession)}/stop`, {method: "POST"});
    banner(`Stopped ${s.name || s.session_id}; start skew ${s.skew_ms == null ? "unknown" : s.skew_ms.toFixed(3) + " ms"} (bound ${s.skew_bound_ms == null ? "unknown" : s.skew_bound_ms.toFixed(3) + " ms"})${(s.skew_warnings || []).length ? "; " + s.skew_warnings.join("; ") : ""}`);
    showResults("Stop all", s.nodes.map(n => ({node_id: n.node_id, cam: n.cam_id, ok: !n.stop || n.stop.ok, okText: n.stop ? "stopped" : "not recording",
      detail: n.stop && !n.stop.ok ? n.stop.error : [n.file_name, n.frame_count != null ? n.frame_count + " frames" : ""].filter(Boolean).join(", ")})));
  });
};
$("lockview").onclick = () => {
  if (!activeSession) return;
  command("Lock View", $("lockview"), async () => {
    const r = await api(`/api/v1/sessions/${encodeURIComponent(activeSession)}/lockview`, {method: "POST"});
    const bad = r.nodes.filter(n => !n.ok);
    banner(bad.length ? "Lock View failed on " + bad.map(n => `${camOf(n.node_id)}: ${n.error}`).join("; ") : `Lock View saved on ${r.nodes.length} cameras`, bad.length > 0);
    showResults("Lock View", callRows(r.nodes, n => n.file_name || ""));
  });
};
$("selftest").onclick = () => command("Self-test all", $("selftest"), async () => {
  banner("Self-test running (5 s clip on every camera)...");
  const r = await api("/api/v1/selftest", {method: "POST", json: {duration_s: 5}});
  banner(r.passed ? "Self-test passed on every camera" : "Self-test FAILED: see the results", !r.passed);
  showResults("Self-test all", r.nodes.map(n => {
    const t = n.result;
    if (!n.ok || !t) return {node_id: n.node_id, ok: false, detail: n.error || "no result"};
    const text = `${t.profile}, ${t.encode_fps} fps, ${t.dropped_frames} dropped, disk ${(t.disk_write_bytes_per_s / 1e6).toFixed(0)} MB/s`;
    return {node_id: n.node_id, ok: t.passed, okText: "pass", detail: t.passed ? text : [text, ...t.errors].join("; ")};
  }));
});
function timelapse(cmd, button) {
  command("Timelapse " + cmd, button, async () => {
    const r = await api(`/api/v1/timelapse/${cmd}`, {method: "POST", json: {}});
    banner(`Timelapse ${cmd}: ${r.ok} of ${r.nodes.length} cameras`, r.failed > 0);
    showResults("Timelapse " + cmd, callRows(r.nodes));
  });
}
$("timelapse-start").onclick = () => timelapse("start", $("timelapse-start"));
$("timelapse-stop").onclick = () => timelapse("stop", $("timelapse-stop"));
$("audio").onchange = () => {
  const enabled = $("audio").checked;
  command("Audio track " + (enabled ? "on" : "off"), $("audio"), async () => {
    const r = await api("/api/v1/audio", {method: "PUT", json: {enabled}});
    banner(`Audio track ${enabled ? "on" : "off"} on ${r.ok} of ${r.nodes.length} cameras`, r.failed > 0);
    showResults("Audio track " + (enabled ? "on" : "off"), callRows(r.nodes));
  });
};
$("mode-apply").onclick = () => {
  const mode = $("mode").value;
  command("Mode " + mode, $("mode-apply"), async () => {
    // one call: the coordinator and every node switch, each node's answer in the result
    const r = await api("/api/v1/fleet/mode", {method: "PUT", json: {mode}});
    const rows = [{node_id: "coordinator", cam: "coordinator", ok: !!r.coordinator, okText: r.coordinator ? r.coordinator.mode : "", detail: r.coordinator && r.coordinator.log_file ? "log file " + r.coordinator.log_file : ""},
      ...callRows(r.nodes, () => "").map(x => Object.assign(x, {okText: mode}))];
    banner(`${mode} mode on the coordinator and ${r.ok} of ${r.nodes.length} cameras`, r.failed > 0);
    showResults("Mode " + mode, rows);
    showMode();
  });
};
async function showMode() {
  try { const m = await api("/api/v1/mode"); $("mode").value = m.mode; $("mode-now").textContent = "coordinator: " + m.mode; }
  catch (e) { $("mode-now").textContent = "mode unknown: " + e.message; }
}

// ---- offload and delete ----
function renderJob(job) {
  const box = $("offload-job");
  if (!job) { box.className = ""; box.innerHTML = ""; return; }
  const counts = Object.entries(job.counts).map(([k, v]) => `${v} ${esc(k)}`).join(", ") || "nothing to offload";
  box.className = "show";
  box.innerHTML = `<div><strong>Offload</strong> <code>${esc(job.job_id)}</code> <span class="state ${esc(job.state)}">${esc(job.state)}</span>
    <span class="bytes">${fmtBytes(job.bytes_done)} of ${fmtBytes(job.bytes_total)}</span> · <span class="counts">${counts}</span></div>
    <progress max="${job.bytes_total || 1}" value="${job.bytes_total ? job.bytes_done : 1}" aria-label="offload progress"></progress>
    <ul class="files">${job.files.map(f => `<li><div class="name trunc" title="${esc(f.file_name)}">${f.download_url ? `<a href="${esc(f.download_url)}">${esc(f.file_name)}</a>` : esc(f.file_name)}</div>
      <div>${esc(camOf(f.node_id))} · <span class="state ${esc(f.state)}">${esc(f.state)}</span> · ${fmtBytes(f.bytes_done)} of ${fmtBytes(f.size_bytes)}${f.attempts > 1 ? ` · ${f.attempts} tries` : ""}</div>
      ${f.error ? `<div class="${f.state === "corrupt" || f.state === "failed" ? "bad" : "warn"}">${esc(f.error)}</div>` : ""}</li>`).join("")}</ul>`;
}
async function refreshJob() {
  if (!offloadJob) {
    const recent = await api("/api/v1/offload?limit=1");
    if (!recent.jobs.length) { renderJob(null); return; }
    offloadJob = recent.jobs[0].job_id;
  }
  renderJob(await api(`/api/v1/offload/${encodeURIComponent(offloadJob)}`));
}
$("offload").onclick = () => command("Offload", $("offload"), async () => {
  const job = await api("/api/v1/offload", {method: "POST", json: {}});
  offloadJob = job.job_id; renderJob(job);
  banner(job.files.length ? `Offloading ${job.files.length} recordings (${fmtBytes(job.bytes_total)})` : "Nothing to offload: every recording is archived and confirmed");
});
$("delete-offloaded").onclick = () => $("delete-dialog").showModal();
$("delete-dialog").addEventListener("close", () => {
  if ($("delete-dialog").returnValue !== "delete") return;
  command("Delete offloaded footage", null, async () => {
    const r = await api("/api/v1/recordings?offloaded=true", {method: "DELETE"});
    banner(`Deleted offloaded footage: ${fmtBytes(r.freed_bytes)} freed. ` + r.nodes.map(n => n.result ? `${n.node_id}: freed ${fmtBytes(n.result.freed_bytes)}` : `${n.node_id}: ${n.error}`).join(" | "), r.nodes.some(n => !n.ok));
    showResults("Delete offloaded footage", callRows(r.nodes, n => n.result ? `freed ${fmtBytes(n.result.freed_bytes)} (${n.result.deleted.length} files${n.result.kept_unoffloaded ? `, ${n.result.kept_unoffloaded} not offloaded kept` : ""})` : ""));
  });
});

// ---- fleet update: one camera at a time, followed until it ends ----
const UPDATE_POLL_MS = 2000;
const UPDATED = new Set(["updated", "up_to_date"]);
// not failures, not done either: the result column says which (a "held" row, amber)
const HELD = {skipped: "skipped", not_started: "not started", waiting: "waiting", updating: "updating"};
function updateRows(run) {
  return run.nodes.map(n => ({node_id: n.node_id, ok: UPDATED.has(n.outcome), okText: n.outcome.replace("_", " "), heldText: HELD[n.outcome],
    detail: [n.from_version && n.version && n.from_version !== n.version ? `${n.from_version} → ${n.version}` : n.version, n.detail].filter(Boolean).join(" · ")}));
}
$("fleet-update").onclick = () => { $("update-dialog").returnValue = ""; $("update-dialog").showModal(); };
$("update-dialog").addEventListener("close", () => {
  if ($("update-dialog").returnValue !== "update") return;
  command("Update software", $("fleet-update"), async () => {
    let run = await api("/api/v1/fleet/update", {method: "POST", json: {}});
    while (run.state === "running") {
      showResults(`Update software to ${run.target || "the newest release"} (running)`, updateRows(run));
      await new Promise(r => setTimeout(r, UPDATE_POLL_MS));
      run = await api("/api/v1/fleet/update");
    }
    const done = run.nodes.filter(n => UPDATED.has(n.outcome)).length;
    banner(`Software update ${run.state}: ${done} of ${run.nodes.length} cameras on ${run.target || "their version"}` +
      (run.stopped_at ? `; stopped at ${camOf(run.stopped_at)}` : ""), run.state !== "done");
    showResults(`Update software to ${run.target || "the newest release"} (${run.state})`, updateRows(run));
  });
});

// ---- per card: preview, shut down ----
let shutdownTarget = null;
$("cards").addEventListener("click", (ev) => {
  const b = ev.target.closest("button"); if (!b) return;
  if (b.dataset.preview) fetchPreview(b.dataset.preview).catch(e => banner("Preview failed: " + e.message, true));
  if (b.dataset.shutdown) {
    shutdownTarget = b.dataset.shutdown;
    const name = $("shutdown-name"); name.textContent = camOf(shutdownTarget); name.title = shutdownTarget;
    $("shutdown-dialog").returnValue = ""; $("shutdown-dialog").showModal();
  }
});
$("shutdown-dialog").addEventListener("close", () => {
  const id = shutdownTarget; shutdownTarget = null;
  if ($("shutdown-dialog").returnValue !== "shutdown" || !id) return;
  command("Shut down " + camOf(id), null, async () => {
    try {
      const a = await api(`/api/v1/nodes/${encodeURIComponent(id)}/shutdown`, {method: "POST"});
      banner(`${camOf(id)} is shutting down` + (a.dry_run ? " (dry run)" : ""));
      showResults("Shut down " + camOf(id), [{node_id: id, ok: a.accepted, okText: a.already_shutting_down ? "already shutting down" : "shutting down", detail: a.steps.join(" → ")}]);
    } catch (e) { banner(`Shut down ${camOf(id)} failed: ${e.message}`, true); showResults("Shut down " + camOf(id), [{node_id: id, ok: false, detail: e.message}]); }
  });
});

// ---- the last session line ----
function renderLastSession(list) {
  const running = list.sessions.find(s => ["recording", "starting", "stopping"].includes(s.state));
  activeSession = running ? running.session_id : null;
  $("stop").disabled = !activeSession; $("lockview").disabled = !activeSession;
  const s = running || list.sessions[0], el = $("last-session");
  if (!s) { el.textContent = "No session yet."; return; }
  const ok = s.nodes.filter(n => n.start && n.start.ok).length;
  const html = `${running ? "Recording" : "Last session"}: <a href="/sessions/${encodeURIComponent(s.session_id)}" class="trunc session-link" title="${esc(s.name || s.session_id)}">${esc(s.name || s.session_id)}</a>
    · <span class="session-state">${esc(s.state)}</span> · ${esc(fmtTime(s.start_at))} · ${ok}/${s.nodes.length} cameras${s.skew_ms != null ? ` · skew ${s.skew_ms.toFixed(3)} ms` : ""}`;
  if (html !== lastSessionHtml) { el.innerHTML = html; lastSessionHtml = html; }  // keeps a focused link
}
let lastSessionHtml = "";

// ---- the live stream, and reading the rest now and then ----
function showLive() {
  const el = $("live");
  if (staleSince) { el.textContent = "out of date since " + staleSince.toTimeString().slice(0, 8); el.className = "pill stale"; }
  else if (fleetNodes) { el.textContent = "live"; el.className = "pill online"; }
  else { el.textContent = "connecting…"; el.className = "pill"; }
}
function renderLive() { if (fleetNodes) renderNodes([...fleetNodes.values()]); }
function heard() { lastHeard = new Date(); staleSince = null; showLive(); }
function connect() {
  stream = new EventSource("/api/v1/events");
  stream.addEventListener("snapshot", (ev) => {
    fleetNodes = new Map(JSON.parse(ev.data).nodes.map(n => [n.node_id, n]));
    heard(); renderLive(); refreshSessions();
  });
  stream.addEventListener("node", (ev) => { const n = JSON.parse(ev.data); if (fleetNodes) { fleetNodes.set(n.node_id, n); heard(); renderLive(); } });
  stream.addEventListener("node_removed", (ev) => { const n = JSON.parse(ev.data); if (fleetNodes) { fleetNodes.delete(n.node_id); heard(); renderLive(); } });
  stream.addEventListener("session", () => { heard(); refreshSessions(); });
  stream.onerror = () => {
    if (!staleSince) { staleSince = lastHeard || new Date(); showLive(); }
    // EventSource retries by itself after a dropped line; after a refused answer it gives
    // up (CLOSED), so start again, and check that we are still signed in.
    if (stream.readyState === EventSource.CLOSED) { stream = null; setTimeout(() => { api("/api/v1/nodes").catch(() => {}); connect(); }, 2000); }
  };
}
async function refreshSessions() {
  try { renderLastSession(await api("/api/v1/sessions?limit=5")); await refreshJob(); }
  catch (e) { banner("Cannot reach the coordinator: " + e.message, true); return false; }
  return true;
}
async function refresh() {
  if (!fleetNodes || staleSince) {
    // No live stream: read the nodes the old way (a proxy that buffers event streams).
    try { renderNodes((await api("/api/v1/nodes")).nodes); }
    catch (e) { banner("Cannot reach the coordinator: " + e.message, true); return; }
  }
  if (await refreshSessions() && $("banner").textContent.startsWith("Cannot reach")) banner("");
}
connect();
refresh();
showMode();
setInterval(refresh, 5000);
setInterval(refreshPreviews, 3000);
