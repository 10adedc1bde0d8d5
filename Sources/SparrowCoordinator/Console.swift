/// The web console served at `/` on the coordinator's HTTP port: one page, built into the
/// binary (nothing is fetched from elsewhere), on the HTTP API (`/v1/search`, `/v1/cluster`).
/// Search: text or a JSON vector, k, filters; each hit with its stored fields, its matched
/// tokens' contributions and those tokens highlighted in its text. Cluster: nodes, shards and
/// replicas, the build, epoch and owner, moves with their copy's progress, refreshed every 2 s.
/// Keyboard: every control is a labelled form element in tab order; Enter searches; `/` goes to
/// the query box. An API key (when the coordinator checks keys) is kept for the browser tab only.
/// `?q=…&k=…&filters=field=value,…` fills the form and searches at once (links, tests).
enum Console {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sparrow console</title>
<style>
  :root { --fg: #1d232a; --muted: #5b6672; --line: #d9dee3; --accent: #0b6bcb; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--fg); background: #f6f8fa; }
  header { display: flex; gap: 1.5rem; align-items: center; padding: .6rem 1.2rem; background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 1.15rem; margin: 0; }
  header label { margin-left: auto; font-size: .85rem; color: var(--muted); }
  main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 1.2rem; padding: 1.2rem; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 1rem 1.2rem; }
  h2 { font-size: 1rem; margin: 0 0 .8rem; }
  form { display: grid; grid-template-columns: 1fr 6rem; gap: .5rem .8rem; align-items: end; }
  form .wide { grid-column: 1 / -1; }
  label { display: block; font-size: .85rem; color: var(--muted); }
  input[type=text], input[type=number], input[type=password] { width: 100%; padding: .45rem .55rem; font: inherit; border: 1px solid var(--line); border-radius: 6px; }
  button { padding: .45rem 1.1rem; font: inherit; color: #fff; background: var(--accent); border: 0; border-radius: 6px; cursor: pointer; }
  :focus-visible { outline: 3px solid #f5a623; outline-offset: 2px; }
  #status { color: var(--muted); min-height: 1.4em; }
  #status.error { color: var(--bad); }
  ol#hits { list-style: none; padding: 0; margin: 0; }
  ol#hits > li { border-top: 1px solid var(--line); padding: .7rem 0; }
  .hit-head { display: flex; gap: .8rem; align-items: baseline; }
  .rank { color: var(--muted); min-width: 2rem; }
  .hit-id { font-weight: 600; }
  .score { margin-left: auto; font-variant-numeric: tabular-nums; }
  .shard { color: var(--muted); font-size: .85rem; }
  dl.fields { display: grid; grid-template-columns: max-content 1fr; gap: .1rem .8rem; margin: .4rem 0 0 2.8rem; font-size: .9rem; }
  dl.fields dt { color: var(--muted); }
  dl.fields dd { margin: 0; }
  mark { background: #fff1a8; padding: 0 .1em; }
  ul.explanation { list-style: none; display: flex; flex-wrap: wrap; gap: .35rem; padding: 0; margin: .45rem 0 0 2.8rem; }
  ul.explanation li { font-size: .82rem; padding: .1rem .45rem; border-radius: 4px; background: rgba(11, 107, 203, var(--share)); border: 1px solid #b6d4f2; }
  table { width: 100%; border-collapse: collapse; font-size: .9rem; margin-bottom: 1rem; }
  th, td { text-align: left; padding: .25rem .4rem; border-bottom: 1px solid var(--line); }
  .up { color: var(--ok); } .draining { color: var(--warn); } .down, .stale { color: var(--bad); }
  progress { width: 8rem; }
  .sr { position: absolute; left: -9999px; }
  h3 { font-size: .9rem; margin: .6rem 0 .3rem; }
  @media (max-width: 900px) { main { grid-template-columns: 1fr; } }
</style>
</head>
<body>
<header>
  <h1>Sparrow</h1>
  <span id="summary" aria-live="polite"></span>
  <label>API key (if the coordinator asks for one)
    <input id="key" type="password" autocomplete="off" size="28"></label>
</header>
<main>
<section aria-labelledby="search-title">
  <h2 id="search-title">Search</h2>
  <form id="form">
    <div class="wide"><label for="q">Query: text, or a JSON vector such as {"protein": 1.5, "gene": 0.5}</label>
      <input id="q" type="text" autocomplete="off" required></div>
    <div><label for="filters">Filters: field=value, comma-separated</label>
      <input id="filters" type="text" autocomplete="off"></div>
    <div><label for="k">Hits (k)</label><input id="k" type="number" min="1" max="100" value="10"></div>
    <div class="wide"><button type="submit">Search</button></div>
  </form>
  <p id="status" role="status" aria-live="polite"></p>
  <ol id="hits" aria-label="hits"></ol>
</section>
<section aria-labelledby="cluster-title">
  <h2 id="cluster-title">Cluster</h2>
  <p id="cluster-status" aria-live="polite"></p>
  <div id="cluster"></div>
</section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const key = $("key");
key.value = sessionStorage.getItem("sparrow-key") || "";
key.addEventListener("change", () => { sessionStorage.setItem("sparrow-key", key.value); refreshCluster(); });

function element(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (name === "text") node.textContent = value; else node.setAttribute(name, value);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

async function api(path, body) {
  const headers = { "content-type": "application/json" };
  if (key.value) headers["authorization"] = "Bearer " + key.value;
  const response = await fetch(path, body === undefined ? { headers } : { method: "POST", headers, body: JSON.stringify(body) });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error((data.error && (data.error.code + ": " + data.error.message)) || ("HTTP " + response.status));
  return data;
}

// The words of `text`, those that are matched tokens marked (WordPiece tokens are lowercase).
function highlighted(text, tokens) {
  const out = element("span");
  for (const part of String(text).split(/(\p{L}[\p{L}\p{N}]*)/u)) {
    out.append(tokens.has(part.toLowerCase()) ? element("mark", { text: part }) : document.createTextNode(part));
  }
  return out;
}

function renderHit(hit) {
  const contributions = (hit.explanation || []).map((c) => ({ ...c, product: c.query_weight * c.document_weight }))
    .sort((a, b) => b.product - a.product);
  const tokens = new Set(contributions.map((c) => c.token));
  const item = element("li", { "data-id": hit.id },
    element("div", { class: "hit-head" },
      element("span", { class: "rank", text: "#" + hit.rank }),
      element("span", { class: "hit-id", text: hit.id }),
      element("span", { class: "shard", text: hit.shard }),
      element("span", { class: "score", text: hit.score.toFixed(4) })));
  const fields = Object.entries(hit.fields || {}).sort(([a], [b]) => (a === "title" ? -1 : b === "title" ? 1 : a.localeCompare(b)));
  if (fields.length) {
    const list = element("dl", { class: "fields" });
    for (const [name, value] of fields) list.append(element("dt", { text: name }), element("dd", {}, highlighted(value, tokens)));
    item.append(list);
  }
  if (contributions.length) {
    const list = element("ul", { class: "explanation", "aria-label": "matched tokens and their contributions" });
    for (const c of contributions) {
      const share = hit.score > 0 ? c.product / hit.score : 0;
      list.append(element("li", { class: "contribution", style: "--share:" + (0.08 + 0.4 * share).toFixed(3),
        title: `query ${c.query_weight.toFixed(3)} × document ${c.document_weight.toFixed(3)}`,
        text: `${c.token} ${c.product.toFixed(3)}` }));
    }
    item.append(list);
  }
  return item;
}

async function search() {
  const status = $("status");
  const hits = $("hits");
  const text = $("q").value.trim();
  if (!text) return;
  const body = { k: Number($("k").value) || 10, explain: true, fields: true };
  if (text.startsWith("{")) {
    try { body.vector = JSON.parse(text); } catch (error) { status.className = "error"; status.textContent = "The vector is not valid JSON: " + error.message; return; }
  } else {
    body.query = text;
  }
  const filters = $("filters").value.split(",").map((f) => f.trim()).filter(Boolean);
  if (filters.length) body.filter = Object.fromEntries(filters.map((f) => { const at = f.indexOf("="); return [f.slice(0, at).trim(), f.slice(at + 1).trim()]; }));
  status.className = ""; status.textContent = "Searching…";
  try {
    const reply = await api("/v1/search", body);
    const coverage = reply.coverage;
    let line = `${reply.hits.length} hits · coverage ${coverage.shards_ok}/${coverage.shards_total} shards · ${reply.took_ms.toFixed(2)} ms · ${reply.mode}`;
    if (coverage.failed.length) line += " · missing: " + coverage.failed.map((f) => `${f.shard} (${f.reason})`).join("; ");
    status.textContent = line;
    hits.replaceChildren(...reply.hits.map(renderHit));
    document.body.dataset.searched = "true";
  } catch (error) {
    status.className = "error"; status.textContent = error.message; hits.replaceChildren();
  }
}

function table(caption, headings, rows) {
  return element("table", {}, element("caption", { class: "sr", text: caption }),
    element("thead", {}, element("tr", {}, ...headings.map((h) => element("th", { scope: "col", text: h })))),
    element("tbody", {}, ...rows.map((cells) => element("tr", {}, ...cells.map((c) => c instanceof Node ? element("td", {}, c) : element("td", { text: c }))))));
}

async function refreshCluster() {
  const status = $("cluster-status");
  try {
    const c = await api("/v1/cluster");
    const map = (await fetch("/healthz").then((r) => r.json()).catch(() => ({}))).map || {};
    const owner = map.role === "owner" ? "this coordinator owns the map" : map.role === "follower" ? `owner ${map.owner || c.owner}`
      : map.role === "unavailable" ? `no owner known (${map.reason})` : (c.owner ? `owner ${c.owner}` : "");
    $("summary").textContent = `epoch ${c.epoch} · build ${c.build || "none"}` + (owner ? ` · ${owner}` : "");
    const nodes = table("nodes", ["node", "address", "state"], c.nodes.map((n) =>
      [n.node, n.address, element("span", { class: n.state, text: n.state + (n.reason ? ` (${n.reason})` : "") })]));
    const shards = table("shards", ["shard", "replicas"], c.shards.map((s) =>
      [s.shard, element("span", {}, ...s.replicas.flatMap((r, i) => [i ? ", " : "", element("span", { class: r.stale ? "stale" : "", text: r.node + (r.stale ? " (stale)" : "") })]))]));
    const moves = c.moves.length ? table("moves", ["move", "shard", "from → to", "phase", "copy"], c.moves.map((m) => [m.id, m.shard, `${m.from || "(new replica)"} → ${m.to}`, m.phase,
      m.total_bytes ? element("progress", { max: String(m.total_bytes), value: String(m.copied_bytes), "aria-label": `copied ${m.copied_bytes} of ${m.total_bytes} bytes` }) : "—"])) : element("p", { text: "No moves in progress." });
    $("cluster").replaceChildren(element("h3", { text: "Nodes" }), nodes, element("h3", { text: "Shards" }), shards, element("h3", { text: "Moves" }), moves);
    status.textContent = "Updated " + new Date().toLocaleTimeString();
  } catch (error) {
    status.textContent = "Cluster: " + error.message;
  }
}

$("form").addEventListener("submit", (event) => { event.preventDefault(); search(); });
document.addEventListener("keydown", (event) => {
  if (event.key === "/" && document.activeElement.tagName !== "INPUT") { event.preventDefault(); $("q").focus(); }
});
const params = new URLSearchParams(location.search);
if (params.get("k")) $("k").value = params.get("k");
if (params.get("filters")) $("filters").value = params.get("filters");
if (params.get("q")) { $("q").value = params.get("q"); search(); } else { $("q").focus(); }
refreshCluster();
setInterval(refreshCluster, 2000);
</script>
</body>
</html>
"""#
}
