// copyhub monitor page: one EventSource, plain DOM, inline SVG charts. No external assets.
"use strict";
const S = { fleet: null, positions: null, events: null, charts: null, eventFilter: "", posFilter: "" };
const MAX_MASTER_ROWS = 300;
const HEADERS = { "Content-Type": "application/json", "X-CopyHub-Request": "1" };
const COLORS = ["#58a6ff", "#3fb950", "#d29922", "#f778ba", "#a371f7", "#79c0ff", "#ffa657", "#56d364"];

const $ = (sel) => document.querySelector(sel);
const esc = (v) => v === null || v === undefined ? "" : String(v).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const num = (v, d = 2) => (typeof v === "number" && isFinite(v)) ? v.toLocaleString(undefined, { minimumFractionDigits: d, maximumFractionDigits: d }) : "-";
const age = (s) => s === null || s === undefined ? "-" : s < 120 ? `${Math.round(s)}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
const mb = (b) => b ? `${(b / 1048576).toFixed(1)}MB` : "-";
const utc = (ms) => ms ? new Date(ms).toISOString().slice(11, 23) : "-";

function connect() {
  const es = new EventSource("/api/v1/stream");
  es.addEventListener("state", (e) => {
    const msg = JSON.parse(e.data);
    for (const part of Object.keys(msg)) { S[part] = msg[part]; render(part); }
  });
  es.onopen = () => { const c = $("#conn"); c.textContent = "live"; c.className = "badge ok"; };
  es.onerror = () => { const c = $("#conn"); c.textContent = "reconnecting"; c.className = "badge off"; };
}

function render(part) {
  if (part === "fleet") { renderFleet(); renderAccounts(); renderEventFilter(); renderCharts(); }
  if (part === "positions") { renderPositions(); renderExposure(); }
  if (part === "events") renderEvents();
  if (part === "charts") renderCharts();
}

function renderFleet() {
  const f = S.fleet;
  $("#kill-state").textContent = "kill switch: " + (f.kill_switch ? "ON" : "off");
  $("#kill-state").className = "badge " + (f.kill_switch ? "bad" : "ok");
  const st = $("#store");
  st.hidden = f.store_ok; st.textContent = f.store_ok ? "" : "store unavailable";
  $("#nodes tbody").innerHTML = f.nodes.map((n) => `<tr data-node="${esc(n.name)}"><td>${esc(n.name)}</td><td>${esc(n.kind)}</td>
    <td class="s-${esc(n.state)}">${esc(n.state)}</td><td class="num">${esc(n.pid)}</td><td class="num">${age(n.uptime_s)}</td>
    <td class="num">${n.restarts}</td><td class="num">${n.cpu_percent === null ? "-" : num(n.cpu_percent, 1) + "%"}</td>
    <td class="num">${mb(n.rss_bytes)}</td><td class="num">${age(n.heartbeat_age_s)}</td><td class="reason">${esc(n.reason)}</td></tr>`).join("");
}

function gauge(lim) {
  if (!lim) return "-";
  const pct = Math.max(0, lim.used_ratio * 100);
  const cls = pct >= 90 ? "bad" : pct >= 60 ? "warn" : "";
  const of = lim.limit_money ? ` of ${num(lim.limit_money, 0)}` : "";
  return `<span class="gauge"><i class="${cls}" style="width:${Math.min(100, pct)}%"></i></span>${num(pct, 1)}%${of}`;
}

function renderAccounts() {
  $("#accounts tbody").innerHTML = S.fleet.accounts.map((a) => {
    const r = a.risk || {}; const lim = r.limits || {};
    const level = r.level ? `<span class="s-${esc(r.level)}">${esc(r.level)}</span>` : "-";
    const lock = r.locked ? ` <span class="s-LOCK">locked${r.lock_until_ms ? " until " + esc(new Date(r.lock_until_ms).toISOString().slice(0, 16).replace("T", " ")) : ""}</span>` : "";
    const state = [a.paused ? "paused" : "", a.flatten_pending ? "flattening" : "", a.enabled ? "" : "disabled"].filter(Boolean).join(", ") || "copying";
    const ctl = [a.paused ? `<button data-action="resume" data-account="${esc(a.name)}">Resume</button>`
                          : `<button data-action="pause" data-account="${esc(a.name)}">Pause</button>`,
                 a.type === "SLAVE" ? `<button class="danger" data-action="flatten" data-account="${esc(a.name)}">Flatten</button>` : "",
                 r.locked ? `<button data-action="release" data-account="${esc(a.name)}">Release lock</button>` : ""].join(" ");
    return `<tr data-account="${esc(a.name)}" data-paused="${a.paused}"><td>${esc(a.name)}</td><td>${esc(a.type)}</td>
      <td class="num">${num(a.balance)}</td><td class="num">${num(a.equity)}</td><td class="num">${num(a.profit)}</td>
      <td class="num">${a.margin_level === null ? "-" : num(a.margin_level, 0) + "%"}</td>
      <td>${gauge(lim.daily)}</td><td>${gauge(lim.overall)}</td><td>${level}${lock}</td>
      <td class="num">${a.open_copies}</td><td class="account-state">${esc(state)}</td><td>${ctl}</td></tr>`;
  }).join("");
}

function renderPositions() {
  const f = S.posFilter.trim();
  let rows = S.positions.positions;
  if (f) rows = rows.filter((p) => p.master === f || p.copies.some((c) => c.slave === f));
  $("#pos-count").textContent = `${rows.length} master position(s)` + (rows.length > MAX_MASTER_ROWS ? `, newest ${MAX_MASTER_ROWS} shown` : "");
  const out = [];
  for (const p of rows.slice(0, MAX_MASTER_ROWS)) {
    out.push(`<tr class="master" data-master="${esc(p.master)}" data-master-ticket="${esc(p.master_ticket)}"><td>${esc(p.master)}</td>
      <td class="num">${esc(p.master_ticket)}</td><td>${esc(p.symbol)}</td><td>${esc(p.direction)}</td><td class="num">${num(p.volume)}</td>
      <td class="num">${num(p.price, 5)}</td><td></td><td></td><td>${p.live ? "open" : "-"}</td><td></td></tr>`);
    for (const c of p.copies) {
      if (f && p.master !== f && c.slave !== f) continue;
      out.push(`<tr class="copy" data-slave="${esc(c.slave)}" data-master-ticket="${esc(c.master_ticket)}"><td>${esc(c.slave)}</td>
        <td class="num">${esc(c.slave_ticket || "-")}</td><td>${esc(c.symbol)}</td><td>${esc(c.direction)}</td>
        <td class="num" title="opened with ${num(c.slave_volume)}">${num(c.held_volume)}</td><td class="num">${num(c.slave_price, 5)}</td><td class="num">${num(c.slippage_points, 1)}</td>
        <td class="num">${num(c.latency_ms, 1)}</td><td class="s-${esc(c.status)} status">${esc(c.status)}</td><td class="reason">${esc(c.reason)}</td></tr>`);
    }
  }
  $("#positions tbody").innerHTML = out.join("");
}

function renderExposure() {
  const e = S.positions.exposure; const out = [];
  for (const t of e.totals) {
    for (const r of e.rows.filter((x) => x.underlying === t.symbol))
      out.push(`<tr><td>${esc(r.symbol)}</td><td>${esc(r.account)}</td><td class="num">${num(r.net_lots)}</td>
        <td class="num">${r.notional_known ? num(r.notional, 0) : num(r.notional, 0) + "*"}</td></tr>`);
    out.push(`<tr class="master"><td>${esc(t.symbol)}</td><td>total (${t.accounts})</td><td></td><td class="num">${num(t.notional, 0)}</td></tr>`);
  }
  $("#exposure tbody").innerHTML = out.join("");
}

function renderEventFilter() {
  const sel = $("#event-filter"); const names = S.fleet.accounts.map((a) => a.name);
  const have = Array.from(sel.options).map((o) => o.value).slice(1);
  if (have.join() === names.join()) return;
  sel.innerHTML = `<option value="">all</option>` + names.map((n) => `<option${n === S.eventFilter ? " selected" : ""}>${esc(n)}</option>`).join("");
}

function renderEvents() {
  if (!S.events) return;
  const rows = S.events.events.filter((e) => !S.eventFilter || e.account === S.eventFilter).slice().reverse();
  $("#events tbody").innerHTML = rows.map((e) => {
    const data = Object.entries(e.data || {}).filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ");
    return `<tr data-kind="${esc(e.kind)}"><td>${utc(e.ts_ms)}</td><td class="s-${esc((e.level || "").toUpperCase())}">${esc(e.level)}</td><td>${esc(e.node)}</td>
      <td>${esc(e.account)}</td><td>${esc(e.kind)}</td><td class="reason">${esc(data.slice(0, 240))}</td></tr>`;
  }).join("");
}

// ------------------------------------------------------------------ charts (inline SVG)
function lineChart(series, x0, x1) {
  const W = 460, H = 180, P = 30;
  const all = series.flatMap((s) => s.points.map((p) => p[1]));
  if (!all.length) return `<svg width="${W}" height="${H}"><text x="${P}" y="${H / 2}">no snapshots yet today</text></svg>`;
  let lo = Math.min(...all), hi = Math.max(...all); if (hi === lo) { hi += 1; lo -= 1; }
  const X = (t) => 44 + (W - 52) * (t - x0) / Math.max(1, x1 - x0);
  const Y = (v) => H - P + 10 - (H - P) * (v - lo) / (hi - lo);
  const lines = series.map((s, i) => `<polyline fill="none" stroke="${COLORS[i % COLORS.length]}" stroke-width="1.5" points="${s.points.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" ")}"><title>${esc(s.name)}</title></polyline>` +
    `<circle r="2.5" fill="${COLORS[i % COLORS.length]}" cx="${X(s.points[s.points.length - 1][0]).toFixed(1)}" cy="${Y(s.points[s.points.length - 1][1]).toFixed(1)}"/>`);
  const legend = series.slice(0, 8).map((s, i) => `<text x="${P + (i % 4) * 110}" y="${H + 24 + Math.floor(i / 4) * 12}" style="fill:${COLORS[i % COLORS.length]}">${esc(s.name.slice(0, 18))}</text>`);
  return `<svg width="${W}" height="${H + 50}"><text x="2" y="${Y(hi) + 3}">${num(hi, 0)}</text><text x="2" y="${Y(lo)}">${num(lo, 0)}</text>${lines.join("")}${legend.join("")}</svg>`;
}

function barChart(buckets, unit) {
  const W = 320, H = 180, P = 20; const max = Math.max(1, ...buckets.map((b) => b.count));
  const bw = (W - P) / buckets.length;
  const bars = buckets.map((b, i) => {
    const h = (H - 2 * P) * b.count / max;
    const label = b.to === null ? `${b.from}+` : `${b.from}`;
    return `<rect x="${P + i * bw + 1}" y="${H - P - h}" width="${bw - 2}" height="${h}" fill="#58a6ff"><title>${b.from}-${b.to === null ? "" : b.to} ${unit}: ${b.count}</title></rect>
      <text x="${P + i * bw + 1}" y="${H - 6}">${label}</text>${b.count ? `<text x="${P + i * bw + 1}" y="${H - P - h - 2}">${b.count}</text>` : ""}`;
  });
  return `<svg width="${W}" height="${H}">${bars.join("")}</svg>`;
}

function renderCharts() {
  const c = S.charts; if (!c) return;
  const now = S.fleet ? S.fleet.ts_ms : Date.now();
  const live = {}; if (S.fleet) for (const a of S.fleet.accounts) if (a.equity !== null) live[a.name] = a.equity;
  const names = Array.from(new Set([...Object.keys(c.equity), ...Object.keys(live)])).sort();
  const series = names.map((n) => ({ name: n, points: [...(c.equity[n] || []), ...(n in live ? [[now, live[n]]] : [])] })).filter((s) => s.points.length);
  $("#equity-chart").innerHTML = lineChart(series, c.day_start_ms, Math.max(now, c.day_start_ms + 1));
  $("#latency-chart").innerHTML = barChart(c.latency_ms, "ms");
  $("#slippage-chart").innerHTML = barChart(c.slippage_points, "points");
}

// ------------------------------------------------------------------ controls
function toast(text) { const t = $("#toast"); t.textContent = text; t.style.display = "block"; clearTimeout(toast.t); toast.t = setTimeout(() => { t.style.display = "none"; }, 5000); }

async function post(url, body) {
  const r = await fetch(url, { method: "POST", headers: HEADERS, body: JSON.stringify(body || {}), credentials: "same-origin" });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(data.detail || data.error || `HTTP ${r.status}`);
  return data;
}

function confirmDialog(title, bodyHtml) {
  return new Promise((resolve) => {
    const d = $("#confirm-dialog");
    $("#confirm-title").textContent = title; $("#confirm-body").innerHTML = bodyHtml;
    d.onclose = () => resolve(d.returnValue === "ok");
    d.returnValue = ""; d.showModal();
  });
}

async function act(action, account) {
  const base = `/api/v1/accounts/${encodeURIComponent(account || "")}`;
  try {
    if (action === "pause") { await post(`${base}/pause`); toast(`${account} paused: no new opens`); }
    else if (action === "resume") { await post(`${base}/resume`); toast(`${account} resumed`); }
    else if (action === "release") {
      if (!await confirmDialog(`Release the risk lock on ${account}?`, "<p>It will trade again; the rules still apply.</p>")) return;
      const out = await post(`${base}/release`);
      toast(out.release_requested === false ? (out.message || `${account} has no risk lock`) : `lock release requested for ${account}`);
    } else if (action === "flatten") {
      const pre = await (await fetch(`${base}/flatten`, { credentials: "same-origin" })).json();
      const list = (pre.open_copies || []).map((c) => `<li>${esc(c.symbol)} ${esc(c.direction)} ${num(c.held_volume)} lots (master ${esc(c.master)} #${esc(c.master_ticket)})</li>`).join("");
      const ok = await confirmDialog(`Flatten ${account}?`, `<p>Close EVERY copied position on <b>${esc(account)}</b> and pause it.
        Open copies: <b class="open-count">${(pre.open_copies || []).length}</b></p><ul>${list}</ul>`);
      if (!ok) { toast("flatten cancelled"); return; }
      await post(`${base}/flatten`, { confirm: account }); toast(`${account}: paused and flatten requested`);
    } else if (action === "kill-on" || action === "kill-off") {
      const on = action === "kill-on";
      if (on && !await confirmDialog("Kill switch ON?", "<p>No new opens on any account until it is switched off.</p>")) return;
      await post("/api/v1/kill-switch", { on }); toast(on ? "KILL SWITCH ON" : "kill switch off");
    }
  } catch (err) { toast(`${action} failed: ${err.message}`); }
}

document.addEventListener("click", (e) => {
  const b = e.target.closest("button[data-action]");
  if (b) act(b.dataset.action, b.dataset.account);
});
document.addEventListener("DOMContentLoaded", () => {
  $("#event-filter").addEventListener("change", (e) => { S.eventFilter = e.target.value; renderEvents(); });
  $("#pos-filter").addEventListener("input", (e) => { S.posFilter = e.target.value; if (S.positions) renderPositions(); });
  connect();
});
