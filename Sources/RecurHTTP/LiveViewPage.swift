/// The live view's page (`GET /`): HTML, CSS and JavaScript in one document, no network
/// access beyond its own daemon (`GET /model`, `/streams`, `/events`), no external library.
/// docs/OBSERVABILITY.md, "Live view", describes what it shows.
enum LiveViewPage {
    static let html = ##"""
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>recurd live view</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; display: flex; min-height: 100vh; color: #222; background: #fafafa; }
nav { width: 14em; border-right: 1px solid #ddd; padding: 0.5em; background: #f0f0f0; flex: none; }
nav h1 { font-size: 1em; margin: 0.2em 0 0.6em; }
nav ul { list-style: none; padding: 0; margin: 0; }
nav li { padding: 0.2em 0.3em; cursor: pointer; border-radius: 3px; word-break: break-all; }
nav li.current { background: #d6e4ff; }
nav li small { color: #666; }
main { flex: 1; padding: 0.5em 1em; min-width: 0; }
header { display: flex; flex-wrap: wrap; gap: 1em; align-items: center; margin-bottom: 0.5em; }
header h2 { font-size: 1.1em; margin: 0; }
#status { color: #666; }
.text { font: 13px/1.6 ui-monospace, monospace; white-space: pre-wrap; word-break: break-all; background: #fff; border: 1px solid #ddd; padding: 0.5em; max-height: 16em; overflow-y: auto; }
.text span { border-radius: 2px; }
.gap { color: #b00; font-style: italic; }
#chart { background: #fff; border: 1px solid #ddd; width: 100%; height: 140px; display: block; }
#heat .row { display: flex; align-items: flex-start; gap: 0.5em; margin: 0.2em 0; }
#heat .label { width: 6em; flex: none; font: 12px ui-monospace, monospace; }
#heat .text { max-height: 5em; padding: 0.2em 0.4em; flex: 1; }
section h3 { font-size: 0.95em; margin: 0.8em 0 0.3em; }
label { white-space: nowrap; }
input[type=number] { width: 5em; }
#units { width: 12em; }
</style>
</head>
<body data-state="loading">
<nav>
<h1>recurd streams</h1>
<ul id="streams"></ul>
</nav>
<main>
<header>
<h2 id="title">no stream chosen</h2>
<span id="status"></span>
<label><input type="radio" name="colour" value="surprisal" checked> surprisal</label>
<label><input type="radio" name="colour" value="rank"> rank (GLTR)</label>
<label>threshold <input id="threshold" type="number" min="0" max="32" step="0.5" value="8"> bits</label>
</header>
<div id="text" class="text" aria-label="the stream's text"></div>
<section>
<h3>bits per token (rolling mean of <span id="window">8</span>; dashed: threshold)</h3>
<svg id="chart" viewBox="0 0 600 140" preserveAspectRatio="none"></svg>
</section>
<section>
<h3>hidden units <input id="units" placeholder="auto: most varying" title="units (indices into the h of all layers, comma-separated); empty: the 4 that vary most so far"></h3>
<div id="heat"></div>
</section>
</main>
<script>
"use strict";
(function () {
  const params = new URLSearchParams(location.search);
  if (params.has("token")) {
    params.delete("token");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : ""));
  }
  const maxTokens = 2000, windowSize = 8, chartPoints = 200, autoUnits = 4;
  const state = { stream: null, source: null, tokens: [], model: null, stopAfter: Number(params.get("until") || 0) };
  const $ = (id) => document.getElementById(id);
  const body = document.body;

  function setStatus(text) { $("status").textContent = text; }

  function threshold() { const t = Number($("threshold").value); return isFinite(t) ? t : 8; }
  function mode() { return document.querySelector("input[name=colour]:checked").value; }

  function bits(logprob) { return logprob === null ? null : -logprob / Math.LN2; }

  /// Colour of a token: surprisal from white (0 bits) to red (the threshold and beyond), or
  /// GLTR's rank buckets (top 1 green, top 5 yellow, top k... red, beyond k purple).
  function colour(token) {
    if (token.bits === null) return "transparent";
    if (mode() === "rank") {
      if (token.rank === 0) return "#b7e4b7";
      if (token.rank !== null && token.rank < 5) return "#f7e08c";
      if (token.rank !== null) return "#f4a3a3";
      return "#d3b5f0";
    }
    const x = Math.min(1, token.bits / Math.max(0.5, threshold()));
    const light = Math.round(100 - 45 * x);
    return "hsl(0, 85%, " + light + "%)";
  }

  function shown(text) { return text; }

  function hover(token) {
    const lines = ["offset " + token.offset + "  id " + token.tid,
      token.bits === null ? "first token: no prediction" : "logprob " + token.logprob + " (" + token.bits.toFixed(2) + " bits)" +
        (token.rank === null ? "" : ", rank " + (token.rank + 1))];
    if (token.previousNext && token.previousNext.length) {
      lines.push("predicted before it:");
      for (const c of token.previousNext) lines.push("  " + JSON.stringify(c.token) + " " + (c.p * 100).toFixed(1) + "%");
    }
    return lines.join("\n");
  }

  function tokenSpan(token) {
    const span = document.createElement("span");
    span.textContent = shown(token.token);
    span.className = "tok";
    span.dataset.offset = token.offset;
    span.dataset.tid = token.tid;
    span.dataset.logprob = token.logprob === null ? "" : String(token.logprob);
    span.style.background = colour(token);
    span.title = hover(token);
    return span;
  }

  function recolour() {
    const spans = $("text").querySelectorAll("span.tok");
    const first = state.tokens.length - spans.length;
    spans.forEach((span, i) => { span.style.background = colour(state.tokens[first + i]); });
    drawChart();
  }

  function drawChart() {
    const svg = $("chart"), W = 600, H = 140;
    const scored = state.tokens.filter((t) => t.bits !== null).slice(-chartPoints - windowSize);
    const means = [];
    for (let i = windowSize - 1; i < scored.length; i++) {
      let sum = 0;
      for (let j = i - windowSize + 1; j <= i; j++) sum += scored[j].bits;
      means.push(sum / windowSize);
    }
    const top = Math.max(threshold() * 1.25, 4, ...means);
    const y = (v) => (H - 4 - (H - 8) * Math.min(v, top) / top).toFixed(1);
    const x = (i) => (means.length < 2 ? 0 : W * i / (means.length - 1)).toFixed(1);
    const points = means.map((m, i) => x(i) + "," + y(m)).join(" ");
    const t = y(threshold());
    svg.innerHTML = '<line id="threshold-line" x1="0" x2="' + W + '" y1="' + t + '" y2="' + t + '" stroke="#c00" stroke-dasharray="6 4"/>' +
      '<polyline id="bpt" fill="none" stroke="#246" stroke-width="1.5" points="' + points + '"/>';
    svg.dataset.points = String(means.length);
  }

  function chosenUnits() {
    const typed = $("units").value.trim();
    if (typed) return typed.split(/[\s,]+/).map(Number).filter((n) => Number.isInteger(n) && n >= 0);
    // The units that vary most on this stream so far.
    const withUnits = state.tokens.filter((t) => t.units);
    if (!withUnits.length) return [];
    const n = withUnits[0].units.length, mean = new Float64Array(n), sq = new Float64Array(n);
    for (const t of withUnits) for (let u = 0; u < n; u++) { mean[u] += t.units[u]; sq[u] += t.units[u] * t.units[u]; }
    const variance = Array.from(mean, (m, u) => sq[u] / withUnits.length - (m / withUnits.length) ** 2);
    return variance.map((v, u) => [v, u]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, autoUnits).map((p) => state.watchedUnits[p[1]]);
  }

  function drawHeat() {
    const heat = $("heat");
    heat.textContent = "";
    const units = chosenUnits();
    heat.dataset.units = units.join(",");
    for (const unit of units) {
      const position = state.watchedUnits.indexOf(unit);
      if (position < 0) continue;
      const row = document.createElement("div");
      row.className = "row";
      const label = document.createElement("div");
      label.className = "label";
      label.textContent = "unit " + unit;
      const text = document.createElement("div");
      text.className = "text heat";
      text.dataset.unit = unit;
      for (const token of state.tokens) {
        const span = document.createElement("span");
        span.textContent = shown(token.token);
        const v = token.units ? token.units[position] : 0;
        span.dataset.value = String(v);
        const a = Math.min(1, Math.abs(v));
        span.style.background = v >= 0 ? "rgba(33, 102, 172, " + a.toFixed(3) + ")" : "rgba(214, 96, 77, " + a.toFixed(3) + ")";
        span.title = "unit " + unit + " = " + v;
        text.appendChild(span);
      }
      row.append(label, text);
      heat.appendChild(row);
    }
  }

  let heatPending = false;
  function scheduleHeat() {
    if (heatPending) return;
    heatPending = true;
    setTimeout(() => { heatPending = false; drawHeat(); }, 100);
  }

  function absorb(event) {
    const last = state.tokens[state.tokens.length - 1];
    if (last && event.offset <= last.offset) {
      // The stream was reset (or ended and created again): start over.
      state.tokens = [];
      $("text").textContent = "";
    }
    if (last && event.offset > last.offset + 1 && state.tokens.length) {
      const gap = document.createElement("span");
      gap.className = "gap";
      gap.textContent = "[" + (event.offset - last.offset - 1) + " tokens not shown]";
      $("text").appendChild(gap);
    }
    const previous = state.tokens[state.tokens.length - 1];
    const token = { offset: event.offset, token: event.token, tid: event.tid, logprob: event.logprob,
      bits: bits(event.logprob), units: event.units || null, rank: null, previousNext: previous ? previous.next : null, next: event.next };
    if (previous && previous.offset === event.offset - 1 && previous.next) {
      const i = previous.next.findIndex((c) => c.token === event.token);
      token.rank = i >= 0 ? i : null;
    }
    state.tokens.push(token);
    const text = $("text");
    text.appendChild(tokenSpan(token));
    if (state.tokens.length > maxTokens) {
      state.tokens.shift();
      const first = text.querySelector("span.tok");
      if (first) first.remove();
    }
    text.scrollTop = text.scrollHeight;
    body.dataset.tokens = String(state.tokens.length);
  }

  function watch(stream) {
    if (state.source) state.source.close();
    state.stream = stream;
    state.tokens = [];
    $("text").textContent = "";
    $("heat").textContent = "";
    $("title").textContent = stream;
    document.querySelectorAll("#streams li").forEach((li) => li.classList.toggle("current", li.dataset.stream === stream));
    const q = new URLSearchParams({ stream: stream, k: "5" });
    const all = state.model && state.model.layers * state.model.hidden <= 1024;
    q.set("units", all ? "all" : Array.from({ length: 1024 }, (_, i) => i).join(","));
    const source = new EventSource("events?" + q.toString());
    state.source = source;
    body.dataset.state = "connecting";
    source.addEventListener("ready", (e) => {
      const ready = JSON.parse(e.data);
      state.watchedUnits = ready.units;
      body.dataset.state = "live";
      setStatus("live");
    });
    source.onmessage = (e) => {
      absorb(JSON.parse(e.data));
      drawChart();
      scheduleHeat();
      if (state.stopAfter && state.tokens.length >= state.stopAfter) {
        source.close();
        drawHeat();
        body.dataset.state = "stopped";
        setStatus("stopped after " + state.stopAfter + " tokens");
      }
    };
    source.addEventListener("end", (e) => {
      const end = JSON.parse(e.data);
      setStatus(end.message);
      if (end.reason !== "overflow") { source.close(); body.dataset.state = "ended"; }
    });
    source.onerror = () => { if (source.readyState === EventSource.CLOSED) setStatus("disconnected"); else setStatus("reconnecting…"); };
  }

  async function loadStreams() {
    const reply = await fetch("streams", { cache: "no-store" });
    if (!reply.ok) { setStatus("cannot list streams: " + reply.status); return; }
    const list = await reply.json();
    const ul = $("streams");
    ul.textContent = "";
    for (const s of list.streams) {
      const li = document.createElement("li");
      li.dataset.stream = s.stream;
      li.textContent = s.stream + " ";
      const small = document.createElement("small");
      small.textContent = s.offset + (s.offset === 1 ? " token" : " tokens") + ", uid " + s.owner;
      li.appendChild(small);
      li.classList.toggle("current", s.stream === state.stream);
      li.onclick = () => { params.set("stream", s.stream); history.replaceState(null, "", "?" + params.toString()); watch(s.stream); };
      ul.appendChild(li);
    }
    body.dataset.streams = String(list.streams.length);
  }

  $("threshold").addEventListener("input", recolour);
  document.querySelectorAll("input[name=colour]").forEach((r) => r.addEventListener("change", recolour));
  $("units").addEventListener("change", drawHeat);
  $("window").textContent = String(windowSize);

  (async function start() {
    const reply = await fetch("model", { cache: "no-store" });
    if (reply.ok) state.model = await reply.json();
    await loadStreams();
    if (params.get("stream")) watch(params.get("stream"));
    else body.dataset.state = "idle";
    setInterval(loadStreams, 5000);
  })();
})();
</script>
</body>
</html>
"""##
}
