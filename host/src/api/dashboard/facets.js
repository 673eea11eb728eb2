// ------------------------------------------------ facets and groups --
// Served after app.js, in the same script (the page's one asset).

/** The search on the page counted by the index: POST /v1/aggregate with `body` (`by`, `size`, `interval`). */
function aggregate(st, signal, body, span = timeRange(st)) {
  const ask = { q: st.q, service: st.service, level: st.level.toLowerCase(), from: iso(span.from), to: span.open ? "" : iso(span.to) };
  for (const k of Object.keys(ask)) if (!ask[k]) delete ask[k];
  return api("/v1/aggregate", {
    method: "POST", signal, headers: { "Content-Type": "application/json" }, body: JSON.stringify({ ...ask, ...body }),
  });
}

/** Values a histogram stacked by a field shows; the rest are "other". */
const GROUP_VALUES = 8;

/**
 * The histogram stacked by a field (`service`, `@key`): the range's most
 * common values, counted per bucket by the index (POST /v1/aggregate
 * with an interval), drawn as the level histogram is.
 */
async function loadGrouped(st, box, signal, after, narrow, span, interval, step) {
  let a;
  try {
    a = await aggregate(st, signal, { by: st.group, size: GROUP_VALUES, interval }, span);
    await after;
  } catch (e) {
    put(box, h("span", { class: "hint" }, e instanceof ApiError ? `histogram: ${e}` : ""));
    if (e.name !== "AbortError" && !(e instanceof ApiError)) onError(e);
    return;
  }
  const values = a.buckets.map((b) => b.value);
  const cls = (i) => `grp-${i}`;
  const legend = values.map((v, i) => [v, cls(i)]);
  if (a.other) legend.push(["other values", "grp-other"]);
  if (a.missing) legend.push([`no ${a.by}`, "grp-missing"]);
  const groups = {
    by: a.by,
    legend,
    parts: (b) => [
      ...values.map((v, i) => [v, Object.hasOwn(b.by_value, v) ? b.by_value[v] : 0, cls(i)]),
      ["other values", b.other, "grp-other"],
      [`no ${a.by}`, b.missing, "grp-missing"],
    ],
  };
  const first = Math.floor(span.from / step) * step;
  const byStart = new Map((a.series || []).map((b) => [Date.parse(b.start), b]));
  const buckets = [];
  for (let t = first; t < span.to; t += step) buckets.push({ t, b: byStart.get(t) });
  drawHistogram(box, buckets, step, st, narrow, groups);
}

/** The facets: for each field, how many of its values to show. */
const FACETS = [["service", 8], ["level", 6]];
/** The search's most common attributes shown as facets, and their values. */
const ATTRIBUTE_FACETS = 3;
const ATTRIBUTE_VALUES = 5;

/**
 * The facet column: the most common services and levels of the current
 * search, counted by the index (POST /v1/aggregate). A value adds
 * `field:"value"` to the query, its "−" adds `-field:"value"`. Asked for
 * once the first rows are painted: it never holds them up.
 */
async function loadFacets(st, box, signal, after, addTerm) {
  await after;
  const count = (body) => aggregate(st, signal, body);
  const facet = async (by, size, slot = null) => {
    const list = h("ul", { class: "facet-values", "aria-label": `most common values of ${by}` });
    const group = h("section", { class: "facet", "data-facet": by }, h("h2", {}, by), list);
    if (slot) slot.replaceWith(group);
    else box.append(group);
    try {
      const a = await count({ by, size });
      if (!a.buckets.length) list.append(h("li", { class: "note" }, "none"));
      for (const { value, count: n } of a.buckets) list.append(facetValue(by, value, n, a.total, addTerm));
      if (a.other) list.append(h("li", { class: "note" }, `${fmt(a.other)} in other values`));
    } catch (e) {
      if (e.name === "AbortError") return;
      list.append(h("li", { class: "note" }, `unavailable: ${e.message}`));
    }
  };
  // The search's most common attributes, each a facet of its values, in
  // the places kept for them after service and level.
  const slots = Array.from({ length: ATTRIBUTE_FACETS }, () => h("span", { hidden: true }));
  const attributes = (async () => {
    try {
      const keys = await count({ by: "attributes", size: ATTRIBUTE_FACETS });
      // A key the query language can write as `@key` (no space, quote…).
      const writable = keys.buckets.filter(({ value }) => /^[\w.\-]+$/.test(value));
      await Promise.all(writable.map(({ value }, i) => facet(`@${value}`, ATTRIBUTE_VALUES, slots[i])));
    } catch (e) {
      if (e.name !== "AbortError") box.append(h("p", { class: "note" }, `attributes unavailable: ${e.message}`));
    }
  })();
  const fields = FACETS.map(([by, size]) => facet(by, size));
  box.append(...slots);
  await Promise.all([...fields, attributes]);
}

/** One value of a facet: its count, a share bar, and the two clicks. */
function facetValue(by, value, count, total, addTerm) {
  const shown = by === "level" ? value.toLowerCase() : value;
  // The query language has no escape for `"`: such a value cannot be
  // written as a term, so it is shown without its clicks.
  const writable = !value.includes('"');
  const term = `${by}:"${shown}"`;
  const share = total ? Math.max(1, Math.round((count * 100) / total)) : 0;
  const pick = h("button", { type: "button", class: "facet-pick", disabled: !writable, title: `add ${term} to the query`, onclick: () => addTerm(term) },
    h("span", { class: "facet-name" }, shown), h("span", { class: "facet-count" }, fmt(count)));
  const bar = h("span", { class: "facet-bar", "aria-hidden": "true" });
  bar.style.setProperty("--share", `${share}%`);
  return h("li", { "data-value": value }, pick,
    h("button", { type: "button", class: "facet-not", disabled: !writable, title: `add -${term} to the query`, "aria-label": `exclude ${shown}`, onclick: () => addTerm(`-${term}`) }, "−"),
    bar);
}

/**
 * The API's `invalid_query` under the query box, its place selected in
 * the box: `… (at character 23)`.
 */
function showQueryError(input, box, e) {
  box.textContent = e.message;
  box.hidden = false;
  input.setAttribute("aria-invalid", "true");
  const at = /\(at character (\d+)\)/.exec(e.message);
  if (at) {
    // Characters, as the server counts them, to the box's UTF-16 units.
    const chars = [...input.value];
    const start = chars.slice(0, Number(at[1]) - 1).join("").length;
    const end = start + (chars[Number(at[1]) - 1] || "").length;
    input.focus();
    input.setSelectionRange(start, Math.max(end, start));
  }
}
