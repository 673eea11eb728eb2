// LoggerHub dashboard: search, histogram, detail, live tail, plugins and
// usage, over the same HTTP API any client uses. No framework and no build
// step. Everything a log holds is put on the page as text (textContent),
// never parsed as HTML: a log is input from whoever sent it.
"use strict";

const LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
const RANGES = [["15m", 900], ["1h", 3600], ["6h", 21600], ["24h", 86400], ["7d", 604800], ["30d", 2592000]];
const DEFAULT_RANGE = "24h";
// Histogram buckets. Whole minutes and hours are counted from the server's
// rollups, and hours are what keeps a day or more quick (30-minute buckets
// over a day read 60 times the rows of 1-hour ones): past a quarter of an
// hour per bucket, only whole hours are picked.
const INTERVALS = [[10, "10s"], [30, "30s"], [60, "1m"], [300, "5m"], [600, "10m"], [900, "15m"],
  [3600, "1h"], [10800, "3h"], [21600, "6h"], [43200, "12h"], [86400, "1d"]];
const TARGET_BUCKETS = 60;
const PAGE_SIZE = 100;
// Rows put on the page before the first paint (a tall screen's worth).
const FIRST_ROWS = 40;
// Rows kept on the page; past it the oldest go (live tail, long scrolls).
const MAX_ROWS = 3000;
// New logs held while the live tail is paused.
const MAX_PAUSED = 1000;
const KEY_SLOT = "loggerhub.key";
const TENANT_SLOT = "loggerhub.tenant";

const numbers = new Intl.NumberFormat();
const fmt = (n) => numbers.format(n);

// ---------------------------------------------------------------- DOM --

/** An element with attributes, properties (`on…` handlers, `text`) and children. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAll(el, attrs);
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

function s(tag, attrs) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  setAll(el, attrs);
  return el;
}

function setAll(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
}

const $ = (sel, root = document) => root.querySelector(sel);

/** Replaces `el`'s children, leaving out the absent ones. */
function put(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
}

// ---------------------------------------------------------------- API --

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
  toString() {
    return `${this.message} (${this.code})`;
  }
}

const session = {
  get key() { return sessionStorage.getItem(KEY_SLOT); },
  get tenant() { return sessionStorage.getItem(TENANT_SLOT); },
  set(key, tenant) { sessionStorage.setItem(KEY_SLOT, key); sessionStorage.setItem(TENANT_SLOT, tenant); },
  clear() { sessionStorage.removeItem(KEY_SLOT); sessionStorage.removeItem(TENANT_SLOT); },
};

/** The API's error as the API said it: `{"error": {"code", "message"}}`. */
async function errorOf(resp) {
  let code = `http_${resp.status}`;
  let message = `the server answered ${resp.status} ${resp.statusText}`.trim();
  try {
    const body = await resp.json();
    if (body && body.error) ({ code, message } = body.error);
  } catch (_) { /* not JSON: keep the status */ }
  return new ApiError(resp.status, code, message);
}

async function request(path, init = {}, key = session.key) {
  let resp;
  try {
    resp = await fetch(path, { ...init, headers: { Authorization: `Bearer ${key}`, Accept: "application/json", ...init.headers } });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "network_error", `the server cannot be reached: ${e.message}`);
  }
  if (resp.ok) return resp;
  const err = await errorOf(resp);
  // The view that asked is gone (another request's 401 signed out): its
  // answer is not news.
  if (init.signal && init.signal.aborted) throw new DOMException("view closed", "AbortError");
  if (resp.status === 401 && key === session.key) {
    // A revoked or expired key: back to the sign-in, with the reason.
    signOut(err.toString());
  }
  throw err;
}

async function api(path, init) {
  const resp = await request(path, init);
  return resp.status === 204 ? null : resp.json();
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  return q.toString();
}

// ------------------------------------------------------------- shell --

const app = { view: null, cleanup: [] };

function banner(message, note = false) {
  const el = $("#banner");
  if (!el) return;
  el.textContent = message ? String(message) : "";
  el.className = note ? "banner note" : "banner";
}

function onError(e) {
  if (e && e.name === "AbortError") return;
  banner(e instanceof ApiError ? e.toString() : `unexpected error: ${e}`);
}

function signOut(reason) {
  session.clear();
  teardown();
  renderSignIn(reason);
}

function teardown() {
  for (const f of app.cleanup.splice(0)) f();
}

function navigate(search, replace = false) {
  const url = `${location.pathname}${search ? `?${search}` : ""}`;
  if (replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  render();
}

function render() {
  teardown();
  if (!session.key) return renderSignIn();
  const params = new URLSearchParams(location.search);
  const view = params.get("view") || "search";
  const views = { search: renderSearch, plugins: renderPlugins, usage: renderUsage };
  const root = $("#app");
  const link = (name, label) => h("a", {
    href: name === "search" ? "?" : `?view=${name}`,
    "aria-current": view === name ? "page" : null,
    onclick: (e) => { e.preventDefault(); navigate(name === "search" ? "" : `view=${name}`); },
  }, label);
  const main = h("main", { id: "main" }, h("div", { id: "banner", class: "banner", role: "alert" }));
  root.replaceChildren(
    h("header", { class: "top" },
      h("span", { class: "brand" }, "LoggerHub"),
      h("nav", { "aria-label": "Views" }, link("search", "Logs"), link("plugins", "Plugins"), link("usage", "Usage")),
      h("span", { class: "who" },
        h("span", { id: "tenant", title: "Signed-in tenant" }, session.tenant || ""),
        h("button", { type: "button", onclick: () => signOut() }, "Sign out"))),
    main);
  (views[view] || renderSearch)(main, params);
}

function renderSignIn(reason) {
  const input = h("input", { id: "key", name: "key", type: "password", autocomplete: "off", required: true, placeholder: "lh_…", spellcheck: "false" });
  const err = h("div", { id: "banner", class: "banner", role: "alert" }, reason || "");
  const form = h("form", {
    class: "signin",
    onsubmit: async (e) => {
      e.preventDefault();
      const key = input.value.trim();
      err.textContent = "";
      try {
        const resp = await request("/v1/usage", {}, key);
        const usage = await resp.json();
        session.set(key, usage.tenant);
        render();
      } catch (ex) {
        err.textContent = ex instanceof ApiError ? ex.toString() : String(ex);
        input.focus();
      }
    },
  },
  h("h1", {}, "Sign in to LoggerHub"),
  err,
  h("label", { for: "key" }, "API key of your tenant (with the search scope)"),
  input,
  h("button", { type: "submit", class: "primary" }, "Sign in"),
  h("p", {}, "The key stays in this tab's session storage and goes only to this server."));
  $("#app").replaceChildren(form);
  input.focus();
}

// ------------------------------------------------------------ search --

/** The search as the URL holds it, so that it can be shared. */
function searchState(params) {
  const st = {
    q: params.get("q") || "",
    service: params.get("service") || "",
    level: (params.get("level") || "").toUpperCase(),
    range: params.get("range") || DEFAULT_RANGE,
    from: params.get("from") || "",
    to: params.get("to") || "",
    live: params.get("live") === "1",
    // The histogram stacked by: the level, or any field (`service`, `@key`).
    group: params.get("group") || "",
    // Or a number attribute charted per bucket (`chart=p95&of=@ms`).
    chart: CHART_STATS.includes(params.get("chart")) ? params.get("chart") : "",
    of: params.get("of") || "",
  };
  if (st.from || st.to) st.range = "custom";
  if (!LEVELS.includes(st.level)) st.level = "";
  return st;
}

function stateQuery(st) {
  const custom = st.range === "custom";
  return query({
    q: st.q, service: st.service, level: st.level.toLowerCase(),
    range: custom || st.range === DEFAULT_RANGE ? "" : st.range,
    from: custom ? st.from : "", to: custom ? st.to : "", live: st.live ? "1" : "",
    group: st.group === "level" ? "" : st.group,
    chart: st.of ? st.chart : "", of: st.chart ? st.of : "",
  });
}

/** The time range in ms: relative ranges end now and leave `to` open. */
function timeRange(st) {
  const now = Date.now();
  if (st.range === "custom") {
    const from = st.from ? Date.parse(st.from) : now - 86400e3;
    const to = st.to ? Date.parse(st.to) : now;
    return { from, to, open: !st.to };
  }
  const secs = (RANGES.find(([n]) => n === st.range) || RANGES[3])[1];
  return { from: now - secs * 1000, to: now, open: true };
}

const iso = (ms) => new Date(ms).toISOString();
// datetime-local inputs are in the browser's time zone.
const localInput = (ms) => {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60e3);
  return d.toISOString().slice(0, 19);
};

function renderSearch(main, params) {
  const st = searchState(params);
  const ctl = new AbortController();
  app.cleanup.push(() => ctl.abort());

  const qInput = h("input", { id: "q", name: "q", type: "search", value: st.q, placeholder: 'error -timeout service:billing "payment failed"', "aria-describedby": "q-help", spellcheck: "false", autocomplete: "off" });
  const service = h("input", { id: "service", name: "service", value: st.service, list: "services", placeholder: "any", autocomplete: "off" });
  const level = h("select", { id: "level", name: "level" },
    h("option", { value: "" }, "any"), LEVELS.map((l) => h("option", { value: l, selected: st.level === l }, l.toLowerCase())));
  const range = h("select", { id: "range", name: "range" },
    RANGES.map(([n]) => h("option", { value: n, selected: st.range === n }, `last ${n}`)),
    h("option", { value: "custom", selected: st.range === "custom" }, "between…"));
  const span = timeRange(st);
  const from = h("input", { id: "from", type: "datetime-local", step: "1", value: localInput(span.from) });
  const to = h("input", { id: "to", type: "datetime-local", step: "1", value: st.to ? localInput(span.to) : "" });
  const abs = h("span", { class: "abs", hidden: st.range !== "custom" },
    h("label", {}, "from", from), h("label", {}, "to (empty: now)", to));
  range.addEventListener("change", () => { abs.hidden = range.value !== "custom"; });
  const live = h("button", { type: "button", id: "live", "aria-pressed": String(st.live), title: "Show new logs as they arrive (l)" }, "Live");
  const group = h("input", { id: "group", name: "group", value: st.group, list: "groups", placeholder: "level", autocomplete: "off", spellcheck: "false", title: "Stack the histogram by: level, service, or an attribute as @key" });
  const chart = h("select", { id: "chart", name: "chart", title: "Chart the logs' count, or a number attribute's figure per bucket" },
    h("option", { value: "" }, "count"), CHART_STATS.map((c) => h("option", { value: c, selected: st.chart === c }, c)));
  const of = h("input", { id: "of", name: "of", value: st.of, placeholder: "@duration_ms", autocomplete: "off", spellcheck: "false", title: "The number attribute to chart, as @key" });

  const submit = (extra = {}) => {
    const next = {
      ...st, q: qInput.value.trim(), service: service.value.trim(), level: level.value, range: range.value,
      group: group.value.trim(), chart: chart.value, of: of.value.trim(), from: "", to: "", ...extra,
    };
    if (next.range === "custom" && !extra.from) {
      if (from.value) next.from = new Date(from.value).toISOString();
      if (to.value) next.to = new Date(to.value).toISOString();
    }
    navigate(stateQuery(next));
  };
  const form = h("form", { class: "filters", role: "search", onsubmit: (e) => { e.preventDefault(); submit(); } },
    h("label", { class: "q" }, "query", qInput),
    h("label", {}, "service", service),
    h("label", {}, "level", level),
    h("label", {}, "time", range),
    abs,
    h("label", {}, "stack by", group),
    h("label", {}, "chart", chart),
    h("label", {}, "of", of),
    h("button", { type: "submit", class: "primary" }, "Search"),
    live);
  live.addEventListener("click", () => {
    // Live follows now: an absolute range becomes the last hour.
    submit({ live: !st.live, ...(st.range === "custom" && !st.live ? { range: "1h" } : {}) });
  });

  const qError = h("p", { id: "q-error", class: "q-error", role: "alert", hidden: true });
  const addTerm = (term) => submit({ q: [qInput.value.trim(), term].filter(Boolean).join(" ") });
  qInput.addEventListener("input", () => { qError.hidden = true; qInput.removeAttribute("aria-invalid"); });
  const summary = h("div", { class: "summary", "aria-live": "polite" },
    h("span", { id: "total" }, "searching…"), h("span", { id: "live-state" }));
  const hist = h("div", { class: "histogram", id: "histogram" });
  const tbody = h("tbody", { id: "rows" });
  const table = h("table", { class: "logs", "aria-label": "Logs, newest first" },
    h("colgroup", {}, h("col", { class: "time" }), h("col", { class: "level" }), h("col", { class: "service" }), h("col", {})),
    h("thead", {}, h("tr", {}, h("th", { class: "time" }, "time"), h("th", {}, "level"), h("th", { class: "service" }, "service"), h("th", {}, "message"))),
    tbody);
  const more = h("div", { class: "more", id: "more" });
  const detail = h("aside", { class: "detail", id: "detail", hidden: true, "aria-label": "Log detail" });
  const facets = h("aside", { class: "facets", id: "facets", "aria-label": "Most common values" });
  main.append(
    form,
    savedBar(st, ctl.signal),
    qError,
    h("p", { id: "q-help", class: "visually-hidden" }, "Terms are ANDed; \"quoted phrases\"; -term excludes; service:, level:, attributes.key:value. Keys: / to search, j and k to move, Enter to open, Escape to close."),
    h("datalist", { id: "services" }),
    h("datalist", { id: "groups" }, ["level", "service"].map((g) => h("option", { value: g }))),
    summary, hist, h("div", { class: "with-facets" }, facets, h("div", {}, table, more)), detail);

  const results = new Results(st, tbody, more, $("#total", summary), ctl.signal, (e) => showQueryError(qInput, qError, e));
  const shown = results.first();
  // Drawn once the first rows are: its layout must not hold them up.
  loadHistogram(st, hist, ctl.signal, shown, (f, t) => submit({ range: "custom", from: iso(f), to: iso(t) }));
  loadFacets(st, facets, ctl.signal, shown, addTerm);
  if (st.live) {
    const tail = new LiveTail(st, results, $("#live-state"));
    app.cleanup.push(() => tail.stop());
  }

  const keys = (e) => {
    const typing = ["INPUT", "SELECT", "TEXTAREA"].includes(document.activeElement?.tagName);
    if (e.key === "Escape" && !detail.hidden) { closeDetail(); return; }
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === "/") { e.preventDefault(); qInput.focus(); qInput.select(); }
    else if (e.key === "j" || e.key === "k") {
      const rows = [...tbody.rows];
      const at = rows.indexOf(document.activeElement);
      const next = rows[Math.max(0, Math.min(rows.length - 1, at + (e.key === "j" ? 1 : -1)))];
      if (next) { e.preventDefault(); next.focus(); }
    } else if (e.key === "l") live.click();
  };
  document.addEventListener("keydown", keys);
  app.cleanup.push(() => document.removeEventListener("keydown", keys));
  // Focusing lays the page out: only once the first rows are shown.
  if (!st.q && !params.toString()) shown.then(() => qInput.focus());
}

/** The results table: the first page, then the next as the end scrolls in. */
class Results {
  constructor(st, tbody, more, total, signal, badQuery) {
    Object.assign(this, { st, tbody, more, total, signal, badQuery, cursor: null, loading: false });
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.next();
    }, { rootMargin: "400px" });
    app.cleanup.push(() => this.observer.disconnect());
  }

  url(cursor) {
    const span = timeRange(this.st);
    const params = {
      q: this.st.q, service: this.st.service, level: this.st.level.toLowerCase(),
      from: iso(span.from), to: span.open ? "" : iso(span.to), limit: PAGE_SIZE, cursor,
    };
    return `${this.st.q ? "/v1/search" : "/v1/logs"}?${query(params)}`;
  }

  async first() {
    this.loading = true;
    const started = performance.now();
    try {
      const page = await api(this.url(), { signal: this.signal });
      const total = page.total_relation === "gte" ? `more than ${fmt(page.total)}` : fmt(page.total);
      this.total.textContent = `${total} log${page.total === 1 ? "" : "s"} · ${Math.round(performance.now() - started)} ms`;
      this.append(page);
      if (!page.hits.length) this.more.textContent = "No logs match. Widen the time range or change the query.";
      await afterPaint();
    } catch (e) {
      this.total.textContent = "";
      // A query that does not parse is shown where it was typed.
      if (e instanceof ApiError && e.code === "invalid_query") this.badQuery(e);
      else onError(e);
    } finally {
      this.loading = false;
    }
  }

  async next() {
    if (this.loading || !this.cursor) return;
    this.loading = true;
    this.more.textContent = "loading…";
    try {
      this.append(await api(this.url(this.cursor), { signal: this.signal }));
    } catch (e) {
      onError(e);
    } finally {
      this.loading = false;
    }
  }

  append(page) {
    // A screenful first, the rest in the next task: the first rows are
    // painted without waiting for the whole page's layout.
    const now = this.tbody.rows.length ? page.hits.length : FIRST_ROWS;
    this.tbody.append(...page.hits.slice(0, now).map(row));
    if (page.hits.length <= now) return this.settle(page);
    setTimeout(() => {
      this.tbody.append(...page.hits.slice(now).map(row));
      this.settle(page);
    });
  }

  /** The page is all on: where the next one starts. */
  settle(page) {
    this.cursor = page.next_cursor;
    this.trim(false);
    this.more.textContent = this.cursor ? "" : this.tbody.rows.length ? "the end" : "";
    this.observer.disconnect();
    if (this.cursor) {
      const sentinel = this.tbody.rows[this.tbody.rows.length - 1];
      if (sentinel) this.observer.observe(sentinel);
    }
  }

  /** New logs from the live tail, oldest first: each goes on top. */
  prepend(hits) {
    for (const r of hits) {
      if (this.tbody.querySelector(`tr[data-id="${CSS.escape(r.id)}"]`)) continue;
      const tr = row(r);
      tr.classList.add("fresh");
      this.tbody.prepend(tr);
    }
    this.trim(true);
  }

  trim(fromBottom) {
    const extra = this.tbody.rows.length - MAX_ROWS;
    if (extra <= 0) return;
    for (let i = 0; i < extra; i++) this.tbody.rows[fromBottom ? this.tbody.rows.length - 1 : 0].remove();
    if (fromBottom) {
      this.cursor = null;
      this.more.textContent = `Only the newest ${fmt(MAX_ROWS)} are kept here; search again to page further back.`;
    }
  }
}

/** Resolves once the page has painted what was put on it. */
const afterPaint = () => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve)));

function timeCell(ts) {
  const d = new Date(ts);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  const date = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} `;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  return h("td", { class: "time", title: ts }, h("span", { class: "date" }, date), time);
}

function row(r) {
  const open = () => openDetail(r.id, tr);
  const tr = h("tr", {
    tabindex: "0", "data-id": r.id, onclick: open,
    onkeydown: (e) => { if (e.key === "Enter") open(); },
  },
  timeCell(r.timestamp),
  h("td", {}, h("span", { class: `lvl lvl-${r.level}` }, r.level)),
  h("td", { class: "service", title: r.service }, r.service),
  h("td", { class: "message", title: r.message }, r.message));
  return tr;
}

// ------------------------------------------------------------ detail --

let detailOpener = null;

async function openDetail(id, opener) {
  const panel = $("#detail");
  detailOpener = opener;
  const close = h("button", { type: "button", onclick: closeDetail, "aria-label": "Close the detail" }, "Close");
  const title = h("h2", { tabindex: "-1" }, "loading…");
  put(panel, h("div", { class: "head" }, title, close));
  panel.hidden = false;
  title.focus();
  try {
    const r = await api(`/v1/logs/${encodeURIComponent(id)}`);
    title.textContent = r.message || r.id;
    const source = r.source === "index"
      ? h("span", { class: "badge ok", id: "source" }, "from the search index")
      : h("span", { class: "badge", id: "source" }, "rebuilt from the raw store");
    const field = (k, v) => [h("dt", {}, k), h("dd", {}, v)];
    const attrs = Object.entries(r.attributes || {});
    put(panel, 
      h("div", { class: "head" }, title, close),
      h("p", {}, h("span", { class: `lvl lvl-${r.level}` }, r.level), " ", source),
      h("dl", {},
        field("id", r.id), field("time", r.timestamp), field("received", r.received_at),
        field("service", r.service), field("language", r.language || "–"), field("raw", r.raw_path || "–")),
      h("h3", {}, "Full log"),
      h("pre", { id: "full-log" }, r.full_log || r.message),
      h("h3", {}, "Attributes"),
      attrs.length ? h("dl", { id: "attributes" }, attrs.map(([k, v]) => field(k, typeof v === "string" ? v : JSON.stringify(v))))
        : h("p", {}, "none"));
    title.focus();
  } catch (e) {
    title.textContent = e instanceof ApiError ? e.toString() : String(e);
  }
}

function closeDetail() {
  const panel = $("#detail");
  if (panel) panel.hidden = true;
  if (detailOpener && document.contains(detailOpener)) detailOpener.focus();
  detailOpener = null;
}

// --------------------------------------------------------- histogram --

function pickInterval(spanMs) {
  const want = spanMs / 1000 / TARGET_BUCKETS;
  return INTERVALS.find(([secs]) => secs >= want) || INTERVALS[INTERVALS.length - 1];
}

async function loadHistogram(st, box, signal, after, narrow) {
  const span = timeRange(st);
  const [secs, interval] = pickInterval(span.to - span.from);
  const step = secs * 1000;
  put(box, h("span", { class: "hint" }, "counting…"));
  if (st.chart && st.of) return loadNumberChart(st, box, signal, after, narrow, span, interval, step);
  if (st.group && st.group !== "level") return loadGrouped(st, box, signal, after, narrow, span, interval, step);
  let stats;
  try {
    // With a query, the search's own matches (counted in the index).
    stats = await api(`/v1/stats?${query({
      q: st.q, interval, service: st.service, level: st.level.toLowerCase(),
      from: iso(span.from), to: span.open ? "" : iso(span.to),
    })}`, { signal });
    await after;
  } catch (e) {
    put(box, h("span", { class: "hint" }, e instanceof ApiError ? `histogram: ${e}` : ""));
    if (e.name !== "AbortError" && !(e instanceof ApiError)) onError(e);
    return;
  }
  const list = $("#services");
  if (list && !st.q) put(list, ...Object.keys(stats.by_service).map((sv) => h("option", { value: sv })));
  const first = Math.floor(span.from / step) * step;
  const buckets = [];
  const byStart = new Map(stats.histogram.map((b) => [Date.parse(b.start), b]));
  for (let t = first; t < span.to; t += step) buckets.push({ t, b: byStart.get(t) });
  drawHistogram(box, buckets, step, st, narrow);
}

function drawHistogram(box, buckets, step, st, narrow, groups = null) {
  const W = Math.max(box.clientWidth - 12, 200);
  const H = 120, top = 6, bottom = 18, left = 40;
  const max = Math.max(1, ...buckets.map(({ b }) => (b ? b.count : 0)));
  const bw = (W - left) / Math.max(buckets.length, 1);
  const y = (n) => (n / max) * (H - top - bottom);
  const svg = s("svg", {
    viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", tabindex: "0", role: "img", id: "histogram-svg",
    "aria-label": `Logs over time by ${groups ? groups.by : "level"}, ${buckets.length} buckets. Drag or use the arrow keys and Enter to narrow the time range.`,
  });
  const label = (x, yy, text, anchor = "start") => {
    const t = s("text", { x, y: yy, "text-anchor": anchor });
    t.textContent = text;
    return t;
  };
  svg.append(label(left - 4, top + 8, fmt(max), "end"), label(left - 4, H - bottom, "0", "end"));
  buckets.forEach(({ t, b }, i) => {
    if (!b) return;
    let base = H - bottom;
    const parts = groups ? groups.parts(b) : LEVELS.map((l) => [l.toLowerCase(), b.by_level?.[l] || 0, `lvl-${l}`]);
    for (const [name, n, cls] of parts) {
      if (!n) continue;
      const hgt = Math.max(y(n), 1);
      base -= hgt;
      const rect = s("rect", { x: left + i * bw + 0.5, y: base, width: Math.max(bw - 1, 1), height: hgt, class: `bar ${cls}`, "data-part": name });
      const tip = s("title", {});
      tip.textContent = `${new Date(t).toLocaleString()}: ${fmt(n)} ${name}`;
      rect.append(tip);
      svg.append(rect);
    }
  });
  const ticks = Math.min(6, buckets.length, Math.floor(W / 110));
  for (let k = 0; k < ticks; k++) {
    const i = Math.floor((k * buckets.length) / ticks);
    const d = new Date(buckets[i].t);
    const text = step >= 86400e3 ? d.toLocaleDateString() : step >= 3600e3 ? `${d.getMonth() + 1}/${d.getDate()} ${d.getHours()}h` : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    svg.append(label(left + i * bw, H - 4, text));
  }
  const sel = s("rect", { class: "sel", y: top, height: H - top - bottom, width: 0, x: 0 });
  const cur = s("rect", { class: "cur", y: top, height: H - top - bottom, width: Math.max(bw - 1, 1), x: 0, visibility: "hidden" });
  svg.append(sel, cur);

  // Pointer: drag a span (or click a bar) to narrow to it.
  const bucketAt = (ev) => {
    const r = svg.getBoundingClientRect();
    const x = ((ev.clientX - r.left) / r.width) * W;
    return Math.max(0, Math.min(buckets.length - 1, Math.floor((x - left) / bw)));
  };
  let start = null;
  svg.addEventListener("pointerdown", (ev) => { start = bucketAt(ev); svg.setPointerCapture(ev.pointerId); });
  svg.addEventListener("pointermove", (ev) => {
    if (start === null) return;
    const [a, z] = [start, bucketAt(ev)].sort((p, q) => p - q);
    setAll(sel, { x: left + a * bw, width: (z - a + 1) * bw });
  });
  svg.addEventListener("pointerup", (ev) => {
    if (start === null) return;
    const [a, z] = [start, bucketAt(ev)].sort((p, q) => p - q);
    start = null;
    narrow(buckets[a].t, buckets[z].t + step);
  });
  // Keyboard: arrows move a cursor over the buckets, Enter narrows to it.
  let at = buckets.length - 1;
  svg.addEventListener("keydown", (ev) => {
    if (ev.key === "ArrowLeft" || ev.key === "ArrowRight") {
      ev.preventDefault();
      at = Math.max(0, Math.min(buckets.length - 1, at + (ev.key === "ArrowLeft" ? -1 : 1)));
      setAll(cur, { x: left + at * bw });
    } else if (ev.key === "Enter") {
      narrow(buckets[at].t, buckets[at].t + step);
    }
  });
  svg.addEventListener("focus", () => setAll(cur, { x: left + at * bw, visibility: "visible" }));
  svg.addEventListener("blur", () => setAll(cur, { visibility: "hidden" }));

  const legend = h("div", { class: "legend", id: "histogram-legend" }, groups
    ? groups.legend.map(([name, cls]) => h("span", { class: cls }, name))
    : LEVELS.map((l) => h("span", { class: `lvl-${l}` }, l.toLowerCase())));
  const total = buckets.reduce((n, { b }) => n + (b ? b.count : 0), 0);
  const hint = h("span", { class: "hint" }, groups?.hint ||
    `${fmt(total)} ${st.q ? "matches" : "logs"} in ${INTERVALS.find(([secs]) => secs * 1000 === step)?.[1] || ""} buckets · drag to narrow`);
  put(box, svg, h("div", { class: "legend" }, hint), legend);
}

// ---------------------------------------------------------- live tail --

/**
 * New logs matching the search, from GET /v1/tail (server-sent events,
 * read with fetch so the key goes in a header). The server reads the
 * stores once per tenant, however many tabs follow; this tab holds one
 * request, closed when the tab is hidden and opened again when shown.
 */
class LiveTail {
  constructor(st, results, status) {
    Object.assign(this, { st, results, status, paused: false, held: [], ctl: null, stopped: false, retry: null });
    this.pause = h("button", { type: "button", id: "pause", "aria-pressed": "false", onclick: () => this.toggle() }, "Pause");
    this.note = h("span", { id: "live-note" });
    put(status, this.note, " ", this.pause);
    this.visibility = () => (document.hidden ? this.disconnect() : this.connect());
    document.addEventListener("visibilitychange", this.visibility);
    this.connect();
  }

  toggle() {
    this.paused = !this.paused;
    this.pause.setAttribute("aria-pressed", String(this.paused));
    this.pause.textContent = this.paused ? "Resume" : "Pause";
    if (!this.paused) {
      this.results.prepend(this.held.splice(0));
    }
    this.say();
  }

  say(extra = "") {
    const held = this.held.length ? ` · ${fmt(this.held.length)} new while paused` : "";
    this.note.textContent = `${this.paused ? "live: paused" : "live: following"}${held}${extra}`;
  }

  url() {
    return `/v1/tail?${query({ q: this.st.q, service: this.st.service, level: this.st.level.toLowerCase() })}`;
  }

  async connect() {
    if (this.stopped || this.ctl || document.hidden) return;
    const ctl = (this.ctl = new AbortController());
    let busy = false;
    this.say(" · connecting");
    try {
      const resp = await request(this.url(), { signal: ctl.signal, headers: { Accept: "text/event-stream" } });
      this.say();
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          this.event(buf.slice(0, cut));
          buf = buf.slice(cut + 2);
        }
      }
    } catch (e) {
      if (e.name === "AbortError") return;
      this.say(` · ${e instanceof ApiError ? e : "disconnected"}`);
      if (e instanceof ApiError && e.status !== 429 && e.status !== 503) return;
      busy = e instanceof ApiError;
    } finally {
      if (this.ctl === ctl) this.ctl = null;
    }
    // A tail ends after a while (the key is checked again): reconnect,
    // later when the server said it is busy.
    if (!this.stopped) this.retry = setTimeout(() => this.connect(), busy ? 5000 : 1000);
  }

  event(text) {
    let name = "message";
    let data = "";
    for (const line of text.split("\n")) {
      if (line.startsWith("event:")) name = line.slice(6).trim();
      else if (line.startsWith("data:")) data += line.slice(5).trim();
    }
    if (!data) return;
    let body;
    try { body = JSON.parse(data); } catch (_) { return; }
    if (name === "logs") {
      if (this.paused) {
        this.held.push(...body.hits);
        if (this.held.length > MAX_PAUSED) this.held.splice(0, this.held.length - MAX_PAUSED);
      } else {
        this.results.prepend(body.hits);
      }
      this.say(body.dropped ? ` · ${fmt(body.dropped)} skipped (too many at once)` : "");
    } else if (name === "lagged") {
      this.say(" · some logs were skipped: this tab read too slowly");
    }
  }

  disconnect() {
    clearTimeout(this.retry);
    if (this.ctl) this.ctl.abort();
    this.ctl = null;
  }

  stop() {
    this.stopped = true;
    this.disconnect();
    document.removeEventListener("visibilitychange", this.visibility);
  }
}

// ----------------------------------------------------------- plugins --

function renderPlugins(main) {
  const ctl = new AbortController();
  app.cleanup.push(() => ctl.abort());
  const pipeline = h("section", { class: "card", id: "pipeline" }, h("h2", {}, "Pipeline"), h("p", {}, "loading…"));
  const plugins = h("section", { class: "card", id: "plugins" }, h("h2", {}, "Plugins"), h("p", {}, "loading…"));
  const letters = h("section", { class: "card", id: "dead-letters" }, h("h2", {}, "Dead letters"), h("p", {}, "loading…"));
  main.append(h("p", {}, h("button", { type: "button", onclick: () => render() }, "Refresh")), pipeline, plugins, letters);
  const failed = (section, title) => (e) => {
    if (e.name === "AbortError") return;
    put(section, h("h2", {}, title), h("p", { class: "banner", role: "alert" }, e instanceof ApiError ? e.toString() : String(e)));
  };

  api("/v1/pipeline", { signal: ctl.signal }).then((p) => {
    const step = (stage, name) => h("li", {}, h("small", {}, stage), name);
    put(pipeline, h("h2", {}, "Pipeline"),
      h("ol", { class: "pipeline", "aria-label": "Stages in order" },
        step("JSON parser", p.json_parser), step("text parser", p.text_parser),
        p.enrichers.map((e, i) => step(`enricher ${i + 1}`, e)), step("router", p.router)));
  }, failed(pipeline, "Pipeline"));

  api("/v1/plugins", { signal: ctl.signal }).then(({ plugins: list }) => {
    const num = (n) => h("td", { class: "num" }, fmt(n));
    const ms = (n) => h("td", { class: "num" }, n.toFixed(2));
    put(plugins, h("h2", {}, "Plugins"), h("table", { class: "grid" },
      h("thead", {}, h("tr", {}, ["stage", "name", "version", "status"].map((c) => h("th", {}, c)),
        ["calls", "errors", "records in", "records out", "mean ms", "max ms"].map((c) => h("th", { class: "num" }, c)))),
      h("tbody", {}, list.map((p) => h("tr", { "data-plugin": p.name },
        h("td", {}, p.stage), h("td", {}, p.name),
        h("td", {}, p.builtin ? "built-in" : `v${p.active ?? "–"} of ${p.versions.map((v) => `v${v}`).join(", ")}`),
        h("td", { class: "status" }, p.disabled
          ? h("details", {}, h("summary", {}, h("span", { class: "badge bad" }, "disabled"), " ", p.disabled.split(":").slice(0, 2).join(":")), h("pre", {}, p.disabled))
          : h("span", { class: "badge ok" }, "active")),
        num(p.figures.calls), num(p.figures.errors), num(p.figures.records_in), num(p.figures.records_out),
        ms(p.figures.mean_ms), ms(p.figures.max_ms))))),
    h("p", { class: "hint" }, "Calls since this server started."));
  }, failed(plugins, "Plugins"));

  const rows = h("tbody", {});
  const more = h("p", {});
  const loadLetters = async (cursor) => {
    const page = await api(`/v1/dead-letters?${query({ limit: 50, cursor })}`, { signal: ctl.signal });
    if (!cursor) {
      put(letters, h("h2", {}, `Dead letters (${fmt(page.total)})`),
        page.dropped ? h("p", {}, `${fmt(page.dropped)} older ones were dropped over the plan's cap.`) : null,
        h("table", { class: "grid" }, h("thead", {}, h("tr", {},
          ["received", "plugin", "kind", "reason", "records", ""].map((c) => h("th", {}, c)))), rows), more);
    }
    rows.append(...page.dead_letters.map(letterRow));
    put(more, page.next_cursor
      ? h("button", { type: "button", onclick: () => loadLetters(page.next_cursor).catch(onError) }, "More")
      : page.dead_letters.length || cursor ? "" : "None: every record went through.");
  };
  loadLetters().catch(failed(letters, "Dead letters"));
}

function letterRow(d) {
  const state = h("span", { role: "status" });
  const replay = h("button", {
    type: "button", "data-replay": d.batch_id,
    onclick: async () => {
      replay.disabled = true;
      try {
        await api(`/v1/dead-letters/${encodeURIComponent(d.batch_id)}/replay`, { method: "POST" });
        state.textContent = "replayed: back in the queue";
      } catch (e) {
        replay.disabled = false;
        state.textContent = e instanceof ApiError ? e.toString() : String(e);
      }
    },
  }, "Replay");
  return h("tr", { "data-letter": d.batch_id },
    h("td", { title: d.received_at }, new Date(d.received_at).toLocaleString()),
    h("td", {}, d.plugin), h("td", {}, d.kind),
    h("td", {}, d.reason, d.body ? h("details", {}, h("summary", {}, "body"), h("pre", {}, d.body)) : null),
    h("td", { class: "num" }, d.records ?? "–"),
    h("td", {}, replay, " ", state));
}

// ------------------------------------------------------------- usage --

const bytes = (n) => {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
};

function renderUsage(main) {
  const ctl = new AbortController();
  app.cleanup.push(() => ctl.abort());
  const card = h("section", { class: "card", id: "usage" }, h("h2", {}, "Usage"), h("p", {}, "loading…"));
  main.append(card);
  api("/v1/usage", { signal: ctl.signal }).then((u) => {
    const meter = (used, limit) => {
      const share = limit ? Math.min(used / limit, 1) : 0;
      return h("div", { class: `meter${limit && used >= limit ? " over" : ""}`, role: "meter", "aria-valuemin": "0", "aria-valuemax": String(limit), "aria-valuenow": String(used) },
        h("div", { style: null, "data-share": share }));
    };
    const line = (what, used, limit, show) => h("tr", {},
      h("td", {}, what), h("td", { class: "num" }, show(used)), h("td", { class: "num" }, limit ? show(limit) : "no limit"),
      h("td", {}, meter(used, limit)));
    const l = u.limits;
    const t = u.today;
    const stored = u.stored;
    put(card, 
      h("h2", {}, `Usage of ${u.tenant} on the ${u.plan} plan`),
      u.exhausted.length ? h("p", { class: "banner", role: "alert" }, `Used up for today: ${u.exhausted.join(", ")}`) : null,
      h("table", { class: "grid" },
        h("thead", {}, h("tr", {}, h("th", {}, "today (UTC)"), h("th", { class: "num" }, "used"), h("th", { class: "num" }, "plan"), h("th", {}, ""))),
        h("tbody", {},
          line("logs", t.logs, l.daily_logs, fmt),
          line("bytes", t.bytes, l.daily_bytes, bytes),
          line("plugin CPU (s)", t.plugin_cpu_seconds, l.plugin_cpu_seconds_per_day, (n) => n.toFixed(1)),
          line("dead letters", t.dead_letters, l.dead_letter_cap, fmt))),
      h("p", {}, `Rate: up to ${fmt(l.logs_per_second)} logs/s and ${bytes(l.bytes_per_second)}/s. Retention: ${fmt(Math.round(l.retention_seconds / 86400))} days.`),
      stored ? h("p", {}, `Stored: ${bytes(stored.metadata_bytes)} metadata, ${bytes(stored.raw_bytes)} raw, ${bytes(stored.index_bytes)} index.`) : null,
      h("h3", {}, "The last 30 days"),
      h("table", { class: "grid" },
        h("thead", {}, h("tr", {}, h("th", {}, "day"), ["logs", "bytes", "plugin CPU (s)", "dead letters"].map((c) => h("th", { class: "num" }, c)))),
        h("tbody", {}, u.days.map((d) => h("tr", {}, h("td", {}, d.day), h("td", { class: "num" }, fmt(d.logs)),
          h("td", { class: "num" }, bytes(d.bytes)), h("td", { class: "num" }, d.plugin_cpu_seconds.toFixed(1)),
          h("td", { class: "num" }, fmt(d.dead_letters)))))));
    // Widths are set from script: the page's policy allows no inline style.
    for (const bar of card.querySelectorAll("[data-share]")) bar.style.width = `${bar.dataset.share * 100}%`;
  }, (e) => {
    if (e.name !== "AbortError") put(card, h("h2", {}, "Usage"), h("p", { class: "banner", role: "alert" }, e instanceof ApiError ? e.toString() : String(e)));
  });
}

window.addEventListener("popstate", render);
document.addEventListener("DOMContentLoaded", render);
