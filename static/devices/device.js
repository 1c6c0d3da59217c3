// Device page: open alarms (live), what a machine is doing now and why it stopped, one uPlot chart
// per metric with the alert thresholds that apply drawn on it, history from the REST API (raw up
// to an hour, auto buckets beyond), live points from the device's events, an empty state that
// says why a chart is empty, and a CSV export of the range shown. Switching to another device
// swaps the page content and the subscription on the same socket (no reconnect).
import {
  LiveStream,
  TIME_TICKS,
  age,
  chartDate,
  formatDateTime,
  formatNumber,
  formatPercent,
  formatThreshold,
  formatTime,
  formatValue,
  getJSON,
  metricLabel,
  metricMeta,
  pageConfig,
} from "../js/live.js";
import { commandEvent, mountCommands, refreshCommands } from "../commands/commands.js";

const SPANS = { "15m": 900, "1h": 3600, "8h": 28800, "24h": 86400, "7d": 604800, "30d": 2592000 };
const RAW_UP_TO = 3600; // seconds: short ranges load raw readings (newest data), longer ones auto buckets
const RANK = { critical: 0, warning: 1, info: 2 };
const STOPS = ["down", "idle", "setup", "offline"];
let config = pageConfig();
let charts = new Map(); // metric → {plot, xs, ys, node, drawn}
let range = { key: "15m" };
let averages = false; // the user chose averages for a range with too many raw readings
let online = null; // the device's connection as last heard (null: from the page)
let loadSeq = 0;

function duration(iso, now = Date.now()) {
  const minutes = Math.max(0, Math.floor((now - Date.parse(iso)) / 60000));
  if (minutes < 1) return "less than a minute";
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

function limitsFor(metric) {
  return (config.thresholds || {})[metric] || [];
}

function axisStyle() {
  return { stroke: "#e8eef5", grid: { stroke: "#2a3644", width: 1 }, ticks: { stroke: "#2a3644" } };
}

// Draws each threshold as a dashed line across the plot with its rule and value, and records
// where (chart.drawn) so a test can check the line sits at the rule's value.
function thresholdPlugin(chart, metric) {
  const colours = { critical: "#ff6b6b", warning: "#ffc940", info: "#9fb3c8" };
  return {
    hooks: {
      draw: [
        (u) => {
          const { ctx, bbox } = u;
          chart.drawn = [];
          for (const limit of limitsFor(metric)) {
            const y = u.valToPos(limit.value, "y", true);
            if (!(y >= bbox.top && y <= bbox.top + bbox.height)) continue;
            ctx.save();
            ctx.strokeStyle = colours[limit.severity] || colours.info;
            ctx.fillStyle = ctx.strokeStyle;
            ctx.lineWidth = 1.5 * devicePixelRatio;
            ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
            ctx.beginPath();
            ctx.moveTo(bbox.left, y);
            ctx.lineTo(bbox.left + bbox.width, y);
            ctx.stroke();
            ctx.font = `${11 * devicePixelRatio}px sans-serif`;
            ctx.textAlign = "right";
            ctx.fillText(`${limit.rule} ${limit.op} ${formatThreshold(limit.value, metric)}`, bbox.left + bbox.width - 4, y - 4);
            ctx.restore();
            // Where the line was drawn, read back through the scale: the value a viewer sees it at.
            const cssY = (y - bbox.top) / devicePixelRatio;
            chart.drawn.push({ value: limit.value, y: cssY, at: u.posToVal(cssY, "y") });
          }
        },
      ],
    },
  };
}

// The y scale always shows the thresholds, so a line is visible however far the values are from it.
function yRange(metric) {
  return (u, min, max) => {
    const values = limitsFor(metric).map((limit) => limit.value);
    let lo = Math.min(min ?? Infinity, ...values);
    let hi = Math.max(max ?? -Infinity, ...values);
    if (!Number.isFinite(lo)) [lo, hi] = [0, 1];
    const pad = hi > lo ? (hi - lo) * 0.08 : Math.abs(hi) * 0.1 || 1;
    return [lo - pad, hi + pad];
  };
}

function xRange() {
  const { start, end } = window_();
  return [start.getTime() / 1000, (end || new Date()).getTime() / 1000];
}

function chartFor(metric) {
  let chart = charts.get(metric);
  if (chart) return chart;
  let node = document.querySelector(`.chart[data-metric="${CSS.escape(metric)}"]`);
  if (!node) {
    document.getElementById("no-charts")?.remove();
    node = document.createElement("figure");
    node.className = "chart";
    node.dataset.metric = metric;
    node.innerHTML = `<figcaption></figcaption><div class="plot"></div><p class="chart-empty" data-role="empty" hidden></p><ul class="thresholds" data-role="thresholds"></ul>`;
    const unit = metricMeta(metric)?.unit;
    node.querySelector("figcaption").textContent = unit ? `${metricLabel(metric)} (${unit})` : metricLabel(metric);
    document.getElementById("charts").append(node);
  }
  renderLimits(node, metric);
  const box = node.querySelector(".plot");
  chart = { xs: [], ys: [], node, drawn: [] };
  const options = {
    width: Math.max(box.clientWidth, 260),
    height: 200,
    tzDate: chartDate,
    // The x axis spans the range chosen, however few points it has (one point alone would make
    // uPlot pick years around it).
    scales: { x: { time: true, range: xRange }, y: { range: yRange(metric) } },
    legend: { live: false },
    axes: [
      { ...axisStyle(), values: TIME_TICKS },
      // Ticks in the metric's precision; the unit is in the caption.
      { ...axisStyle(), size: 64, values: (u, splits) => splits.map((v) => formatNumber(v, metricMeta(metric)?.precision ?? null)) },
    ],
    series: [
      { label: `Time (${config.tz})`, value: (u, ts) => (ts == null ? "—" : formatTime(new Date(ts * 1000), { seconds: true })) },
      {
        label: metricLabel(metric),
        value: (u, v) => formatValue(v, metric),
        stroke: "#4cc2ff",
        width: 2,
        points: { show: (u) => u.data[0].length < 60 }, // sparse data stays visible as dots
      },
    ],
    plugins: [thresholdPlugin(chart, metric)],
  };
  chart.plot = new uPlot(options, [chart.xs, chart.ys], box);
  charts.set(metric, chart);
  return chart;
}

function renderLimits(node, metric) {
  const list = node.querySelector('[data-role="thresholds"]');
  if (!list) return;
  list.replaceChildren(
    ...limitsFor(metric).map((limit) => {
      const item = document.createElement("li");
      item.className = `sev-${limit.severity}`;
      item.dataset.value = String(limit.value);
      item.textContent = `${limit.rule}: ${limit.op} ${formatThreshold(limit.value, metric)} (${limit.severity})`;
      return item;
    }),
  );
}

// Shows the plot, or instead of it a message saying why there is nothing to draw (and what to do).
function showEmpty(chart, reason, text, action) {
  const message = chart.node.querySelector('[data-role="empty"]');
  const plot = chart.node.querySelector(".plot");
  chart.node.dataset.empty = reason || "";
  if (!reason) {
    message.hidden = true;
    plot.hidden = false;
    return;
  }
  plot.hidden = true;
  message.hidden = false;
  message.textContent = text;
  if (action) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = action.label;
    button.addEventListener("click", action.run);
    message.append(" ", button);
  }
}

function window_(now = Date.now()) {
  if (range.key === "custom") return { start: range.start, end: range.end, live: false };
  return { start: new Date(now - SPANS[range.key] * 1000), end: null, live: true };
}

function rawKept(start) {
  return start.getTime() > Date.now() - config.rawRetentionDays * 86400000;
}

function bucketFor(start, end) {
  const span = ((end || new Date()) - start) / 1000;
  return span <= RAW_UP_TO && rawKept(start) && !averages ? "raw" : "auto";
}

async function fetchHistory(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(Object.values(body.errors || {}).flat().join(" ") || body.detail || `HTTP ${response.status}`);
    error.status = response.status;
    error.field = Object.keys(body.errors || {})[0];
    throw error;
  }
  return body;
}

function emptyReason(metric) {
  const name = metricLabel(metric).toLowerCase();
  const offline = online === false || (online === null && document.getElementById("device-state")?.textContent.trim() === "offline");
  if (offline) {
    const seen = document.getElementById("last-seen")?.dataset.lastSeen;
    const since = seen ? ` (last heard ${age(seen)})` : "";
    return ["offline", `No ${name} readings in this range: the device is offline${since}. Check its power and network, or pick a longer range for older data.`];
  }
  return ["no-data", `No ${name} readings in this range. Pick a longer range, or check that the device still sends ${name}.`];
}

async function loadHistory() {
  const seq = ++loadSeq;
  const { start, end } = window_();
  const bucket = bucketFor(start, end);
  const status = document.getElementById("chart-status");
  status.textContent = "Loading history…";
  updateExport();
  const params = (metric) => {
    const query = new URLSearchParams({ metric, bucket, start: start.toISOString() });
    if (end) query.set("end", end.toISOString());
    return query;
  };
  const results = await Promise.allSettled(
    config.metrics.map((metric) => fetchHistory(`/api/v1/devices/${config.device}/telemetry/?${params(metric)}`)),
  );
  if (seq !== loadSeq) return; // a newer range was picked meanwhile
  const used = new Set();
  let failed = "";
  results.forEach((result, index) => {
    const metric = config.metrics[index];
    const chart = chartFor(metric);
    if (result.status !== "fulfilled") {
      chart.xs = [];
      chart.ys = [];
      chart.plot.setData([chart.xs, chart.ys]);
      if (result.reason.field === "bucket" && bucket === "raw") {
        showEmpty(chart, "too-long", `Too many ${metricLabel(metric).toLowerCase()} readings in this range to draw one by one: pick a shorter range, or show averages.`, {
          label: "Show averages",
          run: () => {
            averages = true;
            loadHistory();
          },
        });
      } else {
        showEmpty(chart, "error", `Could not load ${metric}: ${result.reason.message}`);
        failed = `Could not load ${metric}: ${result.reason.message}`;
      }
      return;
    }
    used.add(result.value.bucket);
    const points = result.value.points;
    // Keep live points newer than the history (they arrived while it loaded).
    const lastX = points.length ? Date.parse(points[points.length - 1].ts) / 1000 : -Infinity;
    const liveTail = chart.xs.map((x, i) => [x, chart.ys[i]]).filter(([x]) => x > lastX && window_().live);
    chart.xs = points.map((p) => Date.parse(p.ts) / 1000).concat(liveTail.map(([x]) => x));
    chart.ys = points.map((p) => ("value" in p ? p.value : p.avg)).concat(liveTail.map(([, y]) => y));
    if (chart.xs.length) showEmpty(chart, null);
    else showEmpty(chart, ...emptyReason(metric));
    chart.plot.setData([chart.xs, chart.ys]);
  });
  const resolution = used.size ? `Resolution: ${[...used].join(", ")}` : "";
  status.textContent = failed || resolution;
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
  if (chart.node.dataset.empty !== "too-long") showEmpty(chart, null);
  chart.plot.setData([chart.xs, chart.ys]);
}

// The export link names the range shown (a live range ends now, at the click), every metric, raw
// readings while the raw table still holds the range's start, else the charts' averages.
function updateExport() {
  const link = document.getElementById("export-csv");
  if (!link) return;
  const now = Date.now(); // one instant: a live range's export spans exactly the range
  const { start, end } = window_(now);
  const query = new URLSearchParams({
    start: start.toISOString(),
    end: (end || new Date(now)).toISOString(),
    bucket: rawKept(start) ? "raw" : "auto",
  });
  link.href = `/api/v1/devices/${config.device}/telemetry.csv?${query}`;
}

function setValue(metric, reading) {
  const body = document.querySelector("#current-values tbody");
  body.querySelector(".empty-row")?.remove();
  let row = body.querySelector(`tr[data-metric="${CSS.escape(metric)}"]`);
  if (!row) {
    row = document.createElement("tr");
    row.dataset.metric = metric;
    row.innerHTML = `<th scope="row"></th><td data-role="value"></td><td data-role="ts"><time></time></td>`;
    row.querySelector("th").textContent = metricLabel(metric);
    body.append(row);
    if (!config.metrics.includes(metric)) config.metrics.push(metric);
  }
  row.querySelector('[data-role="value"]').textContent = formatValue(reading.value, metric);
  const time = row.querySelector("time");
  time.dateTime = reading.ts;
  time.textContent = formatTime(reading.ts, { seconds: true });
}

function setState({ state, state_since: since, online: isOnline, last_seen_at: lastSeen }) {
  if (isOnline !== undefined) online = isOnline;
  const seen = document.getElementById("last-seen");
  if (lastSeen && seen) seen.dataset.lastSeen = lastSeen;
  const badge = document.getElementById("device-state");
  if (badge) {
    const machine = config.kind === "machine";
    const shown = isOnline === false ? "offline" : machine ? state || badge.textContent.trim() : "online";
    badge.className = `badge state-${shown}`;
    badge.textContent = shown.replace("_", " ");
  }
  if (isOnline === false) setNow("offline", seen?.dataset.lastSeen || null);
  else if (state) setNow(state, since);
}

// The "Now" card of a machine: state, since when, and for a stop its reason (a new stop has none yet).
function setNow(state, since) {
  const card = document.getElementById("machine-now");
  if (!card) return;
  const changed = card.dataset.state !== state || (since && card.dataset.since && Date.parse(card.dataset.since) !== Date.parse(since));
  card.dataset.state = state;
  card.dataset.since = since || "";
  const badge = card.querySelector('[data-role="state"]');
  badge.className = `badge state-${state}`;
  badge.textContent = state.replace("_", " ");
  const sinceNode = card.querySelector('[data-role="since"]');
  if (since) {
    sinceNode.innerHTML = `since <time></time> (<span data-role="for"></span>)`;
    sinceNode.querySelector("time").dateTime = since;
    sinceNode.querySelector("time").textContent = formatDateTime(since);
    sinceNode.querySelector('[data-role="for"]').textContent = duration(since);
  } else {
    sinceNode.textContent = state === "offline" ? "never heard from" : "";
  }
  const line = card.querySelector('[data-role="reason-line"]');
  line.hidden = !STOPS.includes(state);
  if (!changed) return;
  const reason = card.querySelector('[data-role="reason"]');
  const classify = card.querySelector('[data-role="classify"]');
  if (state === "offline") {
    reason.textContent = `No data: the device has not reported for ${since ? duration(since) : "ever"}. Check its power and network.`;
    classify.hidden = true;
  } else {
    reason.textContent = "not classified yet";
    classify.hidden = false;
  }
}

async function refreshReason() {
  const card = document.getElementById("machine-now");
  if (!card || card.dataset.state === "offline" || !STOPS.includes(card.dataset.state) || !card.dataset.since) return;
  const since = card.dataset.since;
  const stops = await getJSON(`/api/v1/analytics/stops/?device=${config.device}&start=${encodeURIComponent(since)}`);
  const stop = stops.find((s) => Date.parse(s.start) === Date.parse(since));
  if (!stop || card.dataset.since !== since) return;
  const reason = card.querySelector('[data-role="reason"]');
  reason.textContent = stop.reason ? config.reasons[stop.reason] || `reason #${stop.reason}` : "not classified yet";
  card.querySelector('[data-role="classify"]').hidden = Boolean(stop.reason);
}

// Today's OEE of a machine (plant-local day so far), from the OEE API; none without planned time.
async function readOee() {
  const node = document.querySelector('#machine-now [data-role="oee"]');
  if (!node) return;
  const body = await getJSON(`/api/v1/analytics/oee/?device=${config.device}`);
  const total = body.total;
  const apq = document.querySelector('#machine-now [data-role="oee-apq"]');
  if (!total.planned_seconds) {
    node.textContent = "—";
    apq.textContent = "(no planned production time today in the shift calendar)";
    return;
  }
  node.textContent = formatPercent(total.oee, 1);
  const [a, p, q] = [total.availability, total.performance, total.quality].map((value) => formatPercent(value, 1));
  apq.textContent = `A ${a} · P ${p} · Q ${q}`;
}

function alarmItem(alarm) {
  const item = document.createElement("li");
  item.className = `device-alarm sev-${alarm.severity}`;
  item.dataset.alarm = alarm.id;
  item.innerHTML = `<span data-role="severity"></span> <strong data-role="rule"></strong> <span data-role="message"></span>
    <span class="muted" data-role="state"></span> <span class="muted">since <time data-role="raised"></time></span>
    <span class="alarm-action" data-role="action"></span> <a data-role="link">Open in the alarm console</a>`;
  return item;
}

// One alarm row from an API row or an "alarm" live event (both carry these fields).
function upsertAlarm(alarm) {
  const list = document.getElementById("device-alarms");
  if (!list) return;
  let item = list.querySelector(`[data-alarm="${alarm.id}"]`);
  if (alarm.state === "closed") {
    item?.remove();
    return countAlarms();
  }
  if (!item) item = alarmItem(alarm);
  item.className = `device-alarm sev-${alarm.severity}`;
  item.dataset.state = alarm.state;
  item.dataset.rank = RANK[alarm.severity] ?? 9;
  item.dataset.raised = alarm.raised_at;
  const severity = item.querySelector('[data-role="severity"]');
  severity.className = `sev sev-${alarm.severity}`;
  severity.textContent = alarm.severity[0].toUpperCase() + alarm.severity.slice(1);
  item.querySelector('[data-role="rule"]').textContent = alarm.rule_name || alarm.rule;
  item.querySelector('[data-role="message"]').textContent = alarm.message;
  const words = config.alarmStates[alarm.state] || alarm.state;
  item.querySelector('[data-role="state"]').textContent = alarm.shelved ? `${words} · shelved` : words;
  const raised = item.querySelector('[data-role="raised"]');
  raised.dateTime = alarm.raised_at;
  raised.textContent = formatDateTime(alarm.raised_at);
  let action = item.querySelector('[data-role="action"]');
  if (!action) {
    action = document.createElement("span");
    action.className = "alarm-action";
    action.dataset.role = "action";
    item.querySelector('[data-role="link"]').before(action);
  }
  action.textContent = alarm.action || "";
  action.hidden = !alarm.action;
  item.querySelector('[data-role="link"]').href = `${config.consoleUrl}#alarm-${alarm.id}`;
  // Critical first, then oldest (as the console).
  const key = (node) => [Number(node.dataset.rank ?? 9), Date.parse(node.querySelector("time").dateTime)];
  const mine = key(item);
  const after = [...list.children].find((other) => {
    if (other === item) return false;
    const [rank, at] = key(other);
    return rank > mine[0] || (rank === mine[0] && at > mine[1]);
  });
  list.insertBefore(item, after || null);
  countAlarms();
}

function countAlarms() {
  const list = document.getElementById("device-alarms");
  const count = list.children.length;
  document.getElementById("alarm-count").textContent = String(count);
  document.getElementById("no-alarms").hidden = count > 0;
}

async function refreshAlarms() {
  const page = await getJSON(`/api/v1/alarms/?device=${config.device}&open=true&page_size=200`);
  const rows = page.results || page;
  const ids = new Set(rows.map((alarm) => String(alarm.id)));
  for (const item of [...document.querySelectorAll("#device-alarms [data-alarm]")]) {
    if (!ids.has(item.dataset.alarm)) item.remove();
  }
  rows.forEach(upsertAlarm);
  countAlarms();
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
  const optional = (promise) => promise.catch((error) => console.warn("device page:", error.message));
  await Promise.all([
    loadHistory(),
    refreshAlarms(),
    optional(refreshReason()),
    optional(readOee()),
    optional(refreshCommands()),
  ]);
}

function onEvent(event) {
  if (event.device_id !== config.device) return;
  if (event.kind === "telemetry") applyReading(event);
  else if (event.kind === "status") setState({ online: event.online, last_seen_at: event.at });
  else if (event.kind === "alarm") upsertAlarm(event);
  else if (event.kind === "command") commandEvent(event);
}

function wireRanges() {
  for (const button of document.querySelectorAll("button.range")) {
    button.addEventListener("click", () => {
      range = { key: button.dataset.range };
      averages = false;
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
    averages = false;
    document.querySelectorAll("button.range").forEach((b) => b.setAttribute("aria-pressed", "false"));
    loadHistory();
  });
  // A live range ends at the click: refresh the link just before the browser follows it.
  document.getElementById("export-csv")?.addEventListener("click", updateExport);
  document.getElementById("device-switch")?.addEventListener("change", (event) => switchTo(event.target.value));
  // The switch only swaps the view (a select has nothing to submit to the server).
  document.getElementById("device-switch-form")?.addEventListener("submit", (event) => event.preventDefault());
}

function mount() {
  config = pageConfig();
  charts = new Map();
  range = { key: "15m" };
  averages = false;
  online = null;
  wireRanges();
  mountCommands();
  updateExport();
  loadHistory();
  readOee().catch((error) => console.warn("device page:", error.message));
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
mountCommands();
updateExport();
window.__dashboard = { charts: () => charts, range: () => range };
const stream = new LiveStream({ subscriptions: [{ device: config.device }], onEvent, catchUp }).start();
setInterval(() => {
  const seen = document.getElementById("last-seen");
  if (seen?.dataset.lastSeen) seen.textContent = age(seen.dataset.lastSeen);
  const card = document.getElementById("machine-now");
  const lasting = card?.querySelector('[data-role="for"]');
  if (lasting && card.dataset.since) lasting.textContent = duration(card.dataset.since);
}, 1000);
setInterval(() => readOee().catch((error) => console.warn("device page:", error.message)), 60000);
window.addEventListener("popstate", () => location.reload());
