// ------------------------------------------------------ number charts --
// Served after facets.js, in the same script (the page's one asset).

/** What a number attribute can be charted as, per bucket. */
const CHART_STATS = ["avg", "p50", "p90", "p95", "p99", "max", "min", "sum"];

/**
 * The histogram as a number attribute's figure per bucket (`chart=p95`,
 * `of=@duration_ms`): POST /v1/aggregate with `stats` and the histogram's
 * interval. A bucket without numbers draws nothing; a bar's title says
 * the figure and how many numbers it is of.
 */
async function loadNumberChart(st, box, signal, after, narrow, span, interval, step) {
  let a;
  try {
    a = await aggregate(st, signal, { stats: st.of, interval }, span);
    await after;
  } catch (e) {
    put(box, h("span", { class: "hint" }, e instanceof ApiError ? `chart: ${e}` : ""));
    if (e.name !== "AbortError" && !(e instanceof ApiError)) onError(e);
    return;
  }
  const name = `${st.chart} of ${a.number}`;
  const byStart = new Map((a.series || []).map((b) => [Date.parse(b.start), b]));
  const first = Math.floor(span.from / step) * step;
  const buckets = [];
  for (let t = first; t < span.to; t += step) {
    const figure = byStart.get(t)?.stats?.[st.chart];
    buckets.push({ t, b: figure == null ? undefined : { count: figure, numbers: byStart.get(t).stats.count } });
  }
  drawHistogram(box, buckets, step, st, narrow, {
    by: name,
    legend: [[name, "grp-0"]],
    parts: (b) => [[`${name} (${fmt(b.numbers)} numbers)`, b.count, "grp-0"]],
    hint: `${name}: ${a.stats[st.chart] == null ? "no numbers" : fmt(a.stats[st.chart])} over the range, `
      + `${fmt(a.stats.count)} numbers in ${fmt(a.total)} ${st.q ? "matches" : "logs"} · drag to narrow`,
  });
}
