// ---------------------------------------------------- saved searches --
// Served after app.js, in the same script (the page's one asset).

/** The search on the page as a saved search's body. */
function savedBody(st) {
  const custom = st.range === "custom";
  const filters = {
    service: st.service, level: st.level.toLowerCase(), group: st.group,
    range: custom ? "" : st.range, from: custom ? st.from : "", to: custom ? st.to : "",
  };
  for (const k of Object.keys(filters)) if (!filters[k]) delete filters[k];
  return { query: st.q, filters };
}

/** A saved search as the page's state. */
function stateOfSaved(s) {
  const f = s.filters || {};
  const custom = Boolean(f.from || f.to);
  return {
    q: s.query, service: f.service || "", level: (f.level || "").toUpperCase(), group: f.group || "",
    range: custom ? "custom" : f.range || DEFAULT_RANGE, from: f.from || "", to: f.to || "", live: false,
  };
}

/**
 * The saved searches: a list that opens one, and "Save…", which keeps
 * the search on the page under a name (PUT /v1/saved-searches/{name}).
 */
function savedBar(st, signal) {
  const pick = h("select", { id: "saved", "aria-label": "Open a saved search" }, h("option", { value: "" }, "saved searches…"));
  const name = h("input", { id: "save-name", "aria-label": "Name to save the search as", placeholder: "name (a-z 0-9 - _ .)", hidden: true, autocomplete: "off", spellcheck: "false" });
  const open = h("button", { type: "button", id: "open-saved", title: "Open the saved search chosen" }, "Open");
  const save = h("button", { type: "button", id: "save", title: "Keep this search under a name" }, "Save…");
  const note = h("span", { id: "save-note", role: "status" });
  let saved = [];
  const refresh = () => api("/v1/saved-searches", { signal }).then((list) => {
    saved = list.saved_searches;
    put(pick, h("option", { value: "" }, saved.length ? "saved searches…" : "no saved searches"),
      ...saved.map((s) => h("option", { value: s.name }, s.name)));
  }).catch((e) => { if (e.name !== "AbortError") note.textContent = `saved searches: ${e.message}`; });
  refresh();
  // Opened by the button (or Enter), not on `change`: arrow keys on a
  // closed list change its value, and would open each search in turn.
  const openPicked = () => {
    const s = saved.find((x) => x.name === pick.value);
    if (s) navigate(stateQuery(stateOfSaved(s)));
  };
  open.addEventListener("click", openPicked);
  pick.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); openPicked(); } });
  const keep = async () => {
    if (name.hidden) {
      name.hidden = false;
      name.focus();
      return;
    }
    const n = name.value.trim();
    if (!n) return name.focus();
    try {
      await api(`/v1/saved-searches/${encodeURIComponent(n)}`, {
        method: "PUT", signal, headers: { "Content-Type": "application/json" }, body: JSON.stringify(savedBody(st)),
      });
      note.textContent = `saved as ${n}`;
      name.hidden = true;
      name.value = "";
      save.focus();
      refresh();
    } catch (e) {
      if (e.name !== "AbortError") note.textContent = e.message;
    }
  };
  save.addEventListener("click", keep);
  name.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); keep(); } });
  return h("div", { class: "saved-bar" }, pick, open, name, save, note);
}
