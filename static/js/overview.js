// Plant overview: tiles updated live from the plant's group, sparklines (uPlot) drawn for visible tiles.
import { LiveStream, age, formatValue, getJSON, pageConfig, wirePlantSwitch } from "./live.js";

const SPARK_POINTS = 120;
const SPARK_HISTORY_MS = 15 * 60 * 1000;
const config = pageConfig();
const tiles = new Map();
const alarms = new Map(); // alarm id → {device, active}

for (const node of document.querySelectorAll(".tile")) {
  tiles.set(Number(node.dataset.device), {
    node,
    metric: node.dataset.metric || null,
    lastSeen: node.dataset.lastSeen || null,
    state: node.dataset.state || "",
    online: !node.classList.contains("state-offline"),
    xs: [],
    ys: [],
    plot: null,
    visible: false,
  });
}

function expectedMs(id) {
  return (config.expected?.[id] || 60) * 3 * 1000;
}

function pickMetric(values) {
  for (const name of config.keyMetrics || []) if (name in values) return name;
  return Object.keys(values).sort()[0] || null;
}

function render(id) {
  const tile = tiles.get(id);
  if (!tile) return;
  const stale = !tile.lastSeen || Date.now() - Date.parse(tile.lastSeen) > expectedMs(id);
  const state = !tile.online || stale ? "offline" : tile.state || "unknown";
  if (!tile.node.classList.contains(`state-${state}`)) {
    tile.node.className = `tile state-${state}`;
    tile.node.querySelector('[data-role="state"]').textContent = state.replace("_", " ");
  }
  tile.node.querySelector('[data-role="seen"]').textContent = age(tile.lastSeen);
}

function applyReading(id, { values, state, online, last_seen_at: lastSeen }) {
  const tile = tiles.get(id);
  if (!tile) return;
  if (lastSeen && (!tile.lastSeen || lastSeen >= tile.lastSeen)) tile.lastSeen = lastSeen;
  if (state !== undefined && state !== null) tile.state = state;
  if (online !== undefined) tile.online = online;
  tile.metric = tile.metric || pickMetric(values || {});
  const reading = values?.[tile.metric];
  if (reading) {
    tile.node.querySelector('[data-role="metric"]').textContent = tile.metric;
    tile.node.querySelector('[data-role="value"]').textContent = formatValue(reading.value);
    pushSpark(tile, Date.parse(reading.ts) / 1000, reading.value);
  }
  render(id);
}

function pushSpark(tile, x, y) {
  if (tile.xs.length && x <= tile.xs[tile.xs.length - 1]) return;
  tile.xs.push(x);
  tile.ys.push(y);
  if (tile.xs.length > SPARK_POINTS) {
    tile.xs.shift();
    tile.ys.shift();
  }
  if (tile.plot) tile.plot.setData([tile.xs, tile.ys]);
}

function drawSpark(tile) {
  const box = tile.node.querySelector('[data-role="spark"]');
  const options = {
    width: box.clientWidth || 200,
    height: 40,
    pxAlign: false,
    cursor: { show: false },
    legend: { show: false },
    select: { show: false },
    scales: { x: { time: true } },
    axes: [{ show: false }, { show: false }],
    series: [{}, { stroke: "#4cc2ff", width: 1.5 }],
  };
  tile.plot = new uPlot(options, [tile.xs, tile.ys], box);
}

async function loadSpark(id) {
  const tile = tiles.get(id);
  if (!tile.metric) return;
  const start = new Date(Date.now() - SPARK_HISTORY_MS).toISOString();
  const url = `/api/v1/devices/${id}/telemetry/?metric=${tile.metric}&bucket=raw&start=${start}`;
  try {
    const body = await getJSON(url);
    const points = body.points.slice(-SPARK_POINTS);
    const newer = tile.xs.length ? tile.xs[0] : Infinity;
    const older = points.map((p) => [Date.parse(p.ts) / 1000, p.value]).filter(([x]) => x < newer);
    tile.xs = older.map(([x]) => x).concat(tile.xs);
    tile.ys = older.map(([, y]) => y).concat(tile.ys);
    if (tile.plot) tile.plot.setData([tile.xs, tile.ys]);
  } catch (error) {
    console.warn("sparkline history", error);
  }
}

// Sparklines only for tiles on screen: 500 uPlot instances at load would cost the first paint.
const observer = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (!entry.isIntersecting) continue;
    const id = Number(entry.target.dataset.device);
    const tile = tiles.get(id);
    observer.unobserve(entry.target);
    tile.visible = true;
    drawSpark(tile);
    loadSpark(id);
  }
});
tiles.forEach((tile) => observer.observe(tile.node));

function countAlarms() {
  const counts = new Map();
  alarms.forEach(({ device, active }) => active && counts.set(device, (counts.get(device) || 0) + 1));
  tiles.forEach((tile, id) => {
    const node = tile.node.querySelector('[data-role="alarms"]');
    const count = counts.get(id) || 0;
    node.textContent = String(count);
    tile.node.classList.toggle("has-alarms", count > 0);
  });
}

function applyAlarm(alarm) {
  const active = !["resolved", "closed", "ok"].includes(alarm.state);
  alarms.set(alarm.id, { device: alarm.device_id ?? alarm.device, active });
  countAlarms();
}

async function catchUp() {
  const body = await getJSON(`/api/v1/plants/${config.plant}/latest/`);
  for (const row of body.devices) applyReading(row.device, row);
  try {
    const list = await getJSON(`/api/v1/alarms/?plant=${config.plant}&open=true`);
    alarms.clear();
    (list.results || list).forEach(applyAlarm);
  } catch (error) {
    if (error.status !== 404) console.warn("alarms", error);
  }
}

function onEvent(event) {
  if (event.kind === "telemetry") applyReading(event.device_id, event);
  else if (event.kind === "status") applyReading(event.device_id, { online: event.online });
  else if (event.kind === "alarm") applyAlarm(event);
}

wirePlantSwitch();
new LiveStream({ subscriptions: [{ plant: config.plant }], onEvent, catchUp }).start();
setInterval(() => tiles.forEach((_, id) => render(id)), 1000);
