// One node's live view: the MJPEG stream in an <img> (Chromium shows it natively), the
// node's recording state and the view's counters, refreshed each second, and why the
// node turned the view off when it did.
"use strict";
nav(location.pathname);
const DATA = JSON.parse(document.querySelector('meta[name="page-data"]').content);
const NODE = DATA.node_id;
const STREAM = `/api/v1/nodes/${encodeURIComponent(NODE)}/live.mjpg`;
let img = null;   // the <img> while the view is on
let wanted = false;

function showReason(text) {
  const el = $("reason");
  el.textContent = text || "";
  el.classList.toggle("show", !!text);
}

function setButton() {
  const b = $("toggle");
  b.textContent = wanted ? "Stop view" : "Start view";
  b.setAttribute("aria-pressed", String(wanted));
}

function stopView(message) {
  wanted = false;
  if (img) { img.removeAttribute("src"); img.remove(); img = null; }  // closes the stream
  $("placeholder").hidden = false;
  $("placeholder").textContent = message || "The view is stopped.";
  setButton();
}

// Why the stream would not open: the coordinator's (or the node's) own words.
async function whyNot() {
  const ctl = new AbortController();
  try {
    const r = await fetch(STREAM, {credentials: "same-origin", signal: ctl.signal});
    if (r.ok) { ctl.abort(); return null; }
    const body = await r.json().catch(() => ({}));
    return body.detail || ("HTTP " + r.status);
  } catch (e) {
    return e.name === "AbortError" ? null : String(e.message || e);
  }
}

function startView() {
  wanted = true;
  showReason("");
  setButton();
  $("placeholder").hidden = true;
  img = document.createElement("img");
  img.id = "live";
  img.alt = `Live view of ${NODE}`;
  img.addEventListener("error", async () => {
    if (!wanted) return;
    const why = await whyNot();
    stopView("The view is stopped.");
    showReason(why || "The stream ended.");
  });
  img.src = STREAM + "?t=" + Date.now();
  $("view").appendChild(img);
}

$("toggle").addEventListener("click", () => (wanted ? stopView() : startView()));

async function refresh() {
  let node;
  try {
    node = await api(`/api/v1/nodes/${encodeURIComponent(NODE)}`);
  } catch (e) {
    $("viewstate").textContent = e.message;
    return;
  }
  $("title").textContent = node.cam_id ? `${node.cam_id} (${node.node_id})` : node.node_id;
  $("title").title = $("title").textContent;
  const s = node.status;
  if (!s) { $("recstate").textContent = node.online ? "no status yet" : "offline"; return; }
  const r = s.recorder;
  $("recstate").textContent = node.online ? r.state : "offline";
  $("recstate").className = "pill " + (node.online ? r.state : "");
  $("session").textContent = r.session_id || "";
  $("session").title = r.session_id || "";
  $("frames").textContent = String(r.frames);
  $("encode").textContent = `${r.encode_fps.toFixed(1)} of ${r.fps} fps`;
  $("dropped").textContent = String(r.dropped_frames);
  const lv = s.liveview;
  if (!lv) { $("liveinfo").textContent = "this node has no live view"; return; }
  $("liveinfo").textContent = `${lv.state}, ${lv.width}×${lv.height} at ${lv.fps} fps` +
    (lv.clients ? `, ${lv.fps_served.toFixed(1)} fps sent to ${lv.clients} viewer(s)` : "") +
    (lv.source ? ` (${lv.source})` : "");
  $("served").textContent = String(lv.frames_served);
  $("viewstate").textContent = lv.state === "cooling" ? `off for ${Math.ceil(lv.cooldown_s)} s more` : "";
  if (lv.state === "cooling" && lv.off_reason) {
    if (wanted) stopView("The node turned the view off.");
    showReason(`The node turned the view off: ${lv.off_reason}`);
  }
}

setButton();
refresh();
setInterval(refresh, 1000);
startView();
