// Shared by every camfleet page: escaping, number formats, the API call (with the CSRF
// header every state-changing request carries), and the navigation bar.
"use strict";

const $ = (id) => document.getElementById(id);

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
}
function fmtBytes(n) {
  if (n == null) return "–";
  const u = ["B", "kB", "MB", "GB", "TB"]; let i = 0;
  while (n >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  return n.toFixed(i ? 1 : 0) + " " + u[i];
}
function fmtRate(bps) {
  if (bps == null) return "–";
  const m = bps / 1e6;
  return m >= 1 ? m.toFixed(m < 10 ? 1 : 0) + " Mb/s" : (bps / 1e3).toFixed(0) + " kb/s";
}
function fmtNs(ns) {
  if (ns == null) return "–";
  const ms = ns / 1e6;
  return Math.abs(ms) < 1 ? (ns / 1e3).toFixed(0) + " µs" : ms.toFixed(2) + " ms";
}
function fmtTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleString([], {dateStyle: "medium", timeStyle: "medium"});
}

// The page's CSRF token, put in <meta name="csrf-token"> by the server.
function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]')?.content || "";
}

// A JSON API call from the signed-in page. Throws an Error whose message is the server's
// own `detail` (a person can act on it); `.status` and `.body` carry the rest.
async function api(path, opts) {
  opts = Object.assign({method: "GET"}, opts || {});
  const headers = Object.assign({}, opts.headers || {});
  if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(opts.json); }
  if (opts.method !== "GET" && opts.method !== "HEAD") headers["X-CSRF-Token"] = csrfToken();
  const r = await fetch(path, {method: opts.method, body: opts.body, headers, credentials: "same-origin", signal: opts.signal});
  if (r.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); throw new Error("signed out"); }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) { const e = new Error(body.detail || ("HTTP " + r.status)); e.status = r.status; e.body = body; throw e; }
  return body;
}

// The bar at the top of every page; `current` is the page's own link.
function nav(current) {
  const links = [["/", "Dashboard"], ["/sessions", "Sessions"], ["/recordings", "Recordings"], ["/docs", "API"]];
  const el = document.createElement("nav");
  el.setAttribute("aria-label", "camfleet");
  el.innerHTML = links.map(([href, text]) =>
    `<a href="${href}"${href === current ? ' aria-current="page"' : ""}>${text}</a>`).join("") +
    `<form method="post" action="/logout" class="logout"><input type="hidden" name="csrf_token" value="${esc(csrfToken())}"><button type="submit">Sign out</button></form>`;
  document.body.prepend(el);
}
