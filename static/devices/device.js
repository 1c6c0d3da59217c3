// Device detail: one uPlot chart per metric, history from the REST API (auto buckets), live points
// appended from the device's group, current values and state. Switching to another device swaps
// the page content and the subscription on the same socket (no reconnect).
import { LiveStream, age, formatValue, getJSON, pageConfig } from "../js/live.js";

const SPANS = { "15m": 900, "1h": 3600, "8h": 28800, "24h": 86400, "7d": 604800, "30d": 2592000 };
const RAW_UP_TO = 3600; // seconds: short ranges load raw readings (newest data), longer ones auto buckets
let config = pageConfig();
let charts = new Map(); // metric → {plot, xs, ys, node}
let range = { key: "15m" };
let loadSeq = 0;

function axisStyle() {
  return { stroke: "#e8eef5", grid: { stroke: "#2a3644", width: 1 }, ticks: { stroke: "#2a3644" } };
}

function chartFor(metric) {
  let chart = charts.get(metric);
  if (chart) return chart;
  let node = document.querySelector(`.chart[data-metric="${CSS.escape(metric)}"]`);
  if (!node) {
    document.querySelector("#charts > .empty")?.remove();
    node = document.createElement("figure");
    node.className = "chart";
    node.dataset.metric = metric;
    node.innerHTML = `<figcaption></figcaption><div class="plot"></div>`;
    node.querySelector("figcaption").textContent = metric;
    document.getElementById("charts").append(node);
  }
  const box = node.querySelector(".plot");
  const options = {
    width: Math.max(box.clientWidth, 280),
    height: 200,
    scales: { x: { time: true } },
    legend: { live: false },
    axes: [axisStyle(), axisStyle()],
    series: [{}, { label: metric, stroke: "#4cc2ff", width: 2, points: { show: false } }],
  };
  chart = { xs: [], ys: [], node };
  chart.plot = new uPlot(options, [chart.xs, chart.ys], box);
  charts.set(metric, chart);
  return chart;
}

function window_() {
  if (range.key === "custom") return { start: range.start, end: range.end, live: false };
  const now = Date.now();
  return { start: new Date(now - SPANS[range.key] * 1000), end: null, live: true };
}

async function loadHistory() {
  const seq = ++loadSeq;
  const { start, end } = window_();
  const span = ((end || new Date()) - start) / 1000;
  const bucket = span <= RAW_UP_TO ? "raw" : "auto";
  const status = document.getElementById("chart-status");
  status.textContent = "Loading history…";
  const params = (metric) => {
    const query = new URLSearchParams({ metric, bucket, start: start.toISOString() });
    if (end) query.set("end", end.toISOString());
    return query;
  };
  const results = await Promise.allSettled(
    config.metrics.map((metric) => getJSON(`/api/v1/devices/${config.device}/telemetry/?${params(metric)}`)),
  );
  if (seq !== loadSeq) return; // a newer range was picked meanwhile
  const used = new Set();
  results.forEach((result, index) => {
    const chart = chartFor(config.metrics[index]);
    if (result.status !== "fulfilled") {
      status.textContent = `Could not load ${config.metrics[index]}: ${result.reason.message}`;
      return;
    }
    used.add(result.value.bucket);
    const points = result.value.points;
    // Keep live points newer than the history (they arrived while it loaded).
    const lastX = points.length ? Date.parse(points[points.length - 1].ts) / 1000 : -Infinity;
    const liveTail = chart.xs.map((x, i) => [x, chart.ys[i]]).filter(([x]) => x > lastX && window_().live);
    chart.xs = points.map((p) => Date.parse(p.ts) / 1000).concat(liveTail.map(([x]) => x));
    chart.ys = points.map((p) => ("value" in p ? p.value : p.avg)).concat(liveTail.map(([, y]) => y));
    chart.plot.setData([chart.xs, chart.ys]);
  });
  if (!status.textContent.startsWith("Could not")) {
    status.textContent = used.size ? `Resolution: ${[...used].join(", ")}` : "";
  }
}

function appendPoint(metric, ts, value) {
  const { live, start } = window_();
  if (!live) return;
  const chart = chartFor(metric);
  const x = Date.parse(ts) / 1000;
  if (chart.xs.length && x <= chart.xs[chart.xs.length - 1]) return;
  chart.xs.push(x);
  chart.ys.push(value);
  const oldest = start.getTime() / 1000;
  while (chart.xs.length && chart.xs[0] < oldest) {
    chart.xs.shift();
    chart.ys.shift();
  }
  chart.plot.setData([chart.xs, chart.ys]);
}

function setValue(metric, reading) {
  const body = document.querySelector("#current-values tbody");
  body.querySelector(".empty-row")?.remove();
  let row = body.querySelector(`tr[data-metric="${CSS.escape(metric)}"]`);
  if (!row) {
    row = document.createElement("tr");
    row.dataset.metric = metric;
    row.innerHTML = `<th scope="row"></th><td data-role="value"></td><td data-role="ts"><time></time></td>`;
    row.querySelector("th").textContent = metric;
    body.append(row);
    if (!config.metrics.includes(metric)) config.metrics.push(metric);
  }
  row.querySelector('[data-role="value"]').textContent = formatValue(reading.value);
  const time = row.querySelector("time");
  time.dateTime = reading.ts;
  time.textContent = new Date(reading.ts).toLocaleTimeString();
}

function setState({ state, online, last_seen_at: lastSeen }) {
  const seen = document.getElementById("last-seen");
  if (lastSeen && seen) seen.dataset.lastSeen = lastSeen;
  const badge = document.getElementById("device-state");
  if (!badge) return;
  const shown = online === false ? "offline" : state || badge.textContent.trim();
  badge.className = `badge state-${shown}`;
  badge.textContent = shown.replace("_", " ");
}

function applyReading(reading) {
  for (const [metric, value] of Object.entries(reading.values || {})) {
    setValue(metric, value);
    appendPoint(metric, value.ts, value.value);
  }
  setState(reading);
}

async function catchUp() {
  const latest = await getJSON(`/api/v1/devices/${config.device}/latest/`);
  applyReading({ ...latest, values: {} });
  for (const [metric, value] of Object.entries(latest.values)) setValue(metric, value);
  await loadHistory();
}

function onEvent(event) {
  if (event.device_id !== config.device) return;
  if (event.kind === "telemetry") applyReading(event);
  else if (event.kind === "status") setState({ online: event.online });
}

function wireRanges() {
  for (const button of document.querySelectorAll("button.range")) {
    button.addEventListener("click", () => {
      range = { key: button.dataset.range };
      document.querySelectorAll("button.range").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      loadHistory();
    });
  }
  document.getElementById("custom-range")?.addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.target;
    const start = new Date(form.start.value);
    const end = new Date(form.end.value);
    if (!(end > start)) {
      document.getElementById("chart-status").textContent = "The end must be later than the start.";
      return;
    }
    range = { key: "custom", start, end };
    document.querySelectorAll("button.range").forEach((b) => b.setAttribute("aria-pressed", "false"));
    loadHistory();
  });
  document.getElementById("device-switch")?.addEventListener("change", (event) => switchTo(event.target.value));
}

function mount() {
  config = pageConfig();
  charts = new Map();
  range = { key: "15m" };
  wireRanges();
  loadHistory();
}

async function switchTo(url) {
  const previous = config.device;
  // htmx swaps #device-view; the socket stays open, only the device subscription changes.
  await htmx.ajax("GET", url, { target: "#device-view", select: "#device-view", swap: "outerHTML" });
  history.pushState({}, "", url);
  stream.unsubscribe({ device: previous });
  mount();
  stream.subscribe({ device: config.device });
  document.getElementById("device-switch")?.focus();
}

wireRanges();
window.__dashboard = { charts: () => charts, range: () => range };
const stream = new LiveStream({ subscriptions: [{ device: config.device }], onEvent, catchUp }).start();
setInterval(() => {
  const seen = document.getElementById("last-seen");
  if (seen?.dataset.lastSeen) seen.textContent = age(seen.dataset.lastSeen);
}, 1000);
window.addEventListener("popstate", () => location.reload());
