// herder web console: a client of the control API through /api/v1 (same-origin only).
// Everything the server sends is put in the page as text (textContent), never as HTML.
"use strict";

const MAX_LOG_LINES = 2000;
const MAX_EVENTS = 1000;
const DESTRUCTIVE = new Set(["restart", "stop", "pause", "quarantine", "signal"]);
const ANSI = /\x1b\[[0-9;?]*[ -\/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]/g;

const state = {
  status: { children: [], errors: [], generation: 0 },
  fetchedAt: Date.now(),
  selected: null,
  sort: "name",
  csrf: null,
  readOnly: false,
  logSource: null,
  logLines: [],
  refreshTimer: null,
  refreshedAt: 0,
};

const $ = (id) => document.getElementById(id);
const el = (tag, text, cls) => {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
};
const clean = (text) => String(text).replace(ANSI, "");
const childPath = (name, suffix) => `/api/v1/children/${encodeURIComponent(name)}${suffix}`;

function duration(secs) {
  const t = Math.max(0, Math.floor(secs));
  const d = Math.floor(t / 86400), h = Math.floor(t / 3600) % 24, m = Math.floor(t / 60) % 60, s = t % 60;
  if (d) return `${d}d${h}h`;
  if (h) return `${h}h${m}m`;
  if (m) return `${m}m${s}s`;
  return `${s}s`;
}

function bytes(n) {
  const units = ["B", "Ki", "Mi", "Gi", "Ti"];
  let v = n, u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return u ? `${v.toFixed(1)}${units[u]}` : `${n}B`;
}

function matches(child, filter) {
  return filter.split(/\s+/).filter(Boolean).every((term) => {
    if (term.startsWith("state:")) return child.state === term.slice(6);
    if (term.startsWith("label:")) {
      const [k, v] = term.slice(6).split("=");
      const labels = child.labels || {};
      return v === undefined ? k in labels : labels[k] === v;
    }
    return child.name.toLowerCase().includes(term.toLowerCase());
  });
}

function sorted(children) {
  const by = {
    name: () => 0,
    state: (a, b) => a.state.localeCompare(b.state),
    restarts: (a, b) => (b.restarts || 0) - (a.restarts || 0),
    uptime: (a, b) => (b.uptime_secs ?? -1) - (a.uptime_secs ?? -1),
  }[state.sort];
  return [...children].sort((a, b) => by(a, b) || a.name.localeCompare(b.name));
}

// The rows are kept (one per child, by name) and only the cells whose text changed are
// written: rebuilding 1,000 rows every second cost the browser a full style and layout.
function renderTable() {
  const body = $("children").tBodies[0];
  const filter = $("filter").value;
  const rows = sorted(state.status.children.filter((c) => matches(c, filter)));
  const age = (Date.now() - state.fetchedAt) / 1000;
  const old = new Map([...body.rows].map((tr) => [tr.dataset.name, tr]));
  let next = body.firstElementChild;
  for (const child of rows) {
    const usage = child.usage || {};
    const cells = [
      child.name,
      child.state,
      child.pid ?? "-",
      child.uptime_secs != null ? duration(child.uptime_secs + age) : "-",
      child.restarts ?? 0,
      child.ready ? "yes" : "no",
      child.healthy == null ? "-" : child.healthy ? "ok" : "failing",
      usage.cpu_percent != null ? `${usage.cpu_percent.toFixed(1)}%` : "-",
      usage.memory_bytes != null ? bytes(usage.memory_bytes) : "-",
      (child.limits || []).map((l) => `${l.name}=${l.value} (${l.enforcement})`).join(", ") || "-",
      child.reason || child.notify_status || (child.pid == null ? child.last_exit || "" : ""),
    ];
    let tr = old.get(child.name);
    old.delete(child.name);
    if (!tr) {
      tr = el("tr");
      tr.dataset.name = child.name;
      cells.forEach(() => tr.append(el("td")));
      tr.cells[2].className = "pid";
    }
    tr.classList.toggle("selected", child.name === state.selected);
    cells.forEach((text, i) => {
      const td = tr.cells[i];
      const value = clean(text);
      if (td.textContent !== value) td.textContent = value;
    });
    const stateClass = `state-${child.state}`;
    if (tr.cells[1].className !== stateClass) tr.cells[1].className = stateClass;
    if (tr === next) next = next.nextElementSibling;
    else body.insertBefore(tr, next);
  }
  for (const tr of old.values()) tr.remove();
  $("count").textContent = `${rows.length} of ${state.status.children.length}`;
}

function renderSummary() {
  const counts = {};
  for (const c of state.status.children) counts[c.state] = (counts[c.state] || 0) + 1;
  const parts = Object.keys(counts).sort().map((s) => `${counts[s]} ${s}`);
  const errors = state.status.errors.length;
  $("summary").textContent = `generation ${state.status.generation} · ${state.status.children.length} children: ${parts.join(", ") || "none"}` +
    (errors ? ` · ${errors} manifest error${errors === 1 ? "" : "s"}` : "");
  $("error-count").textContent = errors ? `(${errors})` : "";
  const list = $("error-list");
  list.replaceChildren(...(errors ? state.status.errors.map((e) => {
    const li = el("li");
    const where = [e.file || "?", e.line, e.column].filter((x) => x != null).join(":");
    li.append(el("span", where, "where"), document.createTextNode(" " + clean(e.message)));
    if (e.hint) li.append(el("span", "hint: " + clean(e.hint), "hint"));
    return li;
  }) : [el("li", "no manifest errors in force")]));
}

async function refreshStatus() {
  state.refreshTimer = null;
  state.refreshedAt = Date.now();
  const answer = await fetch("/api/v1/status");
  if (!answer.ok) return;
  state.status = await answer.json();
  state.fetchedAt = Date.now();
  if (!state.selected && state.status.children.length) select(state.status.children[0].name);
  renderTable();
  renderSummary();
}

// Coalesced: a burst of events costs one status request per 100 ms, and a lone event is
// fetched at once (not 100 ms later).
function scheduleRefresh() {
  if (state.refreshTimer !== null) return;
  state.refreshTimer = setTimeout(refreshStatus, Math.max(0, state.refreshedAt + 100 - Date.now()));
}

function setLink(up, text) {
  const link = $("link");
  link.textContent = text;
  link.className = `link ${up ? "up" : "down"}`;
}

function followEvents() {
  const source = new EventSource("/api/v1/events/stream?since=0");
  source.onopen = () => { setLink(true, "connected"); scheduleRefresh(); };
  source.onerror = () => setLink(false, "disconnected, reconnecting…");
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    const rest = Object.entries(event)
      .filter(([k]) => !["seq", "time", "child", "type"].includes(k))
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
    const line = el("div");
    line.append(el("span", `${event.seq} ${(event.time || "").slice(11, 23)} `, "dim"),
      document.createTextNode(clean(`${event.child ? event.child + ": " : ""}${event.type} ${rest}`)));
    const list = $("event-list");
    list.append(line);
    while (list.childNodes.length > MAX_EVENTS) list.firstChild.remove();
    scheduleRefresh();
  };
}

function searchPattern() {
  const text = $("search").value;
  if (!text) return null;
  const flags = $("search-case").checked ? "g" : "gi";
  try {
    return new RegExp($("search-regex").checked ? text : text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"), flags);
  } catch (_) {
    return null;
  }
}

function logLine(entry, pattern) {
  const div = el("div", null, entry.stream === "stderr" ? "stderr" : "");
  const text = clean(entry.text);
  if (!pattern) { div.textContent = text; return [div, false]; }
  let at = 0, hit = false;
  for (const m of text.matchAll(pattern)) {
    if (!m[0]) break;
    hit = true;
    div.append(document.createTextNode(text.slice(at, m.index)), el("span", m[0], "hit"));
    at = m.index + m[0].length;
  }
  div.append(document.createTextNode(text.slice(at)));
  return [div, hit];
}

function renderLog() {
  const pattern = searchPattern();
  let hits = 0;
  const nodes = state.logLines.map((entry) => {
    const [node, hit] = logLine(entry, pattern);
    if (hit) hits++;
    return node;
  });
  $("log").replaceChildren(...nodes);
  $("matches").textContent = pattern ? `${hits} matching lines` : "";
  if ($("follow").checked) $("log").lastElementChild?.scrollIntoView({ block: "end" });
}

function followLog(name) {
  if (state.logSource) state.logSource.close();
  state.logLines = [];
  renderLog();
  const source = new EventSource(childPath(name, "/logs/stream?n=200"));
  source.onmessage = (message) => {
    const entry = JSON.parse(message.data);
    state.logLines.push(entry);
    if (state.logLines.length > MAX_LOG_LINES) state.logLines.shift();
    const [node] = logLine(entry, searchPattern());
    const log = $("log");
    log.append(node);
    while (log.childNodes.length > MAX_LOG_LINES) log.firstChild.remove();
    if ($("follow").checked) node.scrollIntoView({ block: "end" });
  };
  state.logSource = source;
}

async function showDetail(name) {
  const answer = await fetch(childPath(name, ""));
  const detail = await answer.json();
  $("detail-text").textContent = clean(JSON.stringify(detail, null, 2));
}

function select(name) {
  state.selected = name;
  $("selected-name").textContent = name;
  followLog(name);
  showDetail(name);
  renderTable();
}

async function act(verb) {
  if (!state.selected) return;
  const body = {};
  if (verb === "signal") {
    const signal = window.prompt(`signal to send to ${state.selected}`, "SIGHUP");
    if (signal === null) return;
    body.signal = signal;
  }
  if (DESTRUCTIVE.has(verb)) {
    const reason = window.prompt(`${verb} ${state.selected}? reason (optional)`, "");
    if (reason === null) { $("outcome").textContent = `${verb} cancelled`; return; }
    if (reason) body.reason = reason;
  }
  const answer = await fetch(childPath(state.selected, `/${verb}`), {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Herder-CSRF": state.csrf || "" },
    body: JSON.stringify(body),
  });
  const reply = await answer.json().catch(() => ({}));
  $("outcome").textContent = answer.ok ? `${verb} ${state.selected}: accepted`
    : `${verb} ${state.selected}: ${clean(reply.error?.message || answer.status)}`;
}

async function start() {
  const session = await (await fetch("/api/session")).json();
  state.csrf = session.csrf;
  state.readOnly = session.read_only;
  if (state.readOnly) document.body.classList.add("read-only");
  $("children").tBodies[0].addEventListener("click", (e) => {
    const row = e.target.closest("tr");
    if (row) select(row.dataset.name);
  });
  for (const th of document.querySelectorAll("th[data-sort]")) {
    th.addEventListener("click", () => { state.sort = th.dataset.sort; renderTable(); });
  }
  for (const button of document.querySelectorAll("#actions button")) {
    button.addEventListener("click", () => act(button.dataset.verb));
  }
  for (const tab of document.querySelectorAll(".tabs button")) {
    tab.addEventListener("click", () => {
      for (const t of document.querySelectorAll(".tabs button, .tab")) t.classList.remove("active");
      tab.classList.add("active");
      $(tab.dataset.tab).classList.add("active");
      if (tab.dataset.tab === "detail" && state.selected) showDetail(state.selected);
    });
  }
  $("filter").addEventListener("input", renderTable);
  for (const id of ["search", "search-case", "search-regex"]) $(id).addEventListener("input", renderLog);
  setInterval(renderTable, 1000);
  followEvents();
  await refreshStatus();
}

start();
