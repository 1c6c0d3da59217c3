// Plant overview: tiles updated live from the plant's group, sparklines (uPlot) drawn for visible tiles,
// open alarm counts (counts API, refreshed on every live alarm event) and today's OEE per machine.
import { LiveStream, age, formatValue, getJSON, pageConfig } from "../js/live.js";

const SPARK_POINTS = 120;
const SPARK_HISTORY_MS = 15 * 60 * 1000;
const OEE_REFRESH_MS = 60 * 1000;
const config = pageConfig();
const tiles = new Map();

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

// Counts come from the server, never from adding up events: an alarm event may be a raise, an
// acknowledgement or a close, and only the server knows which alarms the page had counted.
// Events only trigger a re-read; reads never overlap, and one more follows if events came meanwhile.
let countsReading = null;
let countsAgain = false;

function showAlarmCounts(devices) {
  tiles.forEach((tile, id) => {
    const node = tile.node.querySelector('[data-role="alarms"]');
    const counts = devices[id] || { total: 0 };
    node.textContent = String(counts.total);
    node.title = counts.total
      ? `Open alarms: ${counts.critical} critical, ${counts.warning} warning, ${counts.info} info; ` +
        `${counts.unacknowledged} unacknowledged, ${counts.shelved} shelved`
      : "No open alarms";
    tile.node.classList.toggle("has-alarms", counts.total > 0);
  });
}

async function readAlarmCounts() {
  if (countsReading) {
    countsAgain = true;
    return countsReading;
  }
  countsReading = (async () => {
    try {
      do {
        countsAgain = false;
        try {
          const body = await getJSON(`/api/v1/alarms/counts/?plant=${config.plant}&per_device=true`);
          showAlarmCounts(body[config.plant]?.devices || {});
        } catch (error) {
          if (error.status !== 404) console.warn("alarm counts", error);
        }
      } while (countsAgain);
    } finally {
      countsReading = null;
    }
  })();
  return countsReading;
}

function percent(value) {
  return value === null || value === undefined ? "—" : `${value.toFixed(2)} %`;
}

function showOee(rows) {
  const byDevice = new Map(rows.map((row) => [row.device, row]));
  tiles.forEach((tile, id) => {
    const node = tile.node.querySelector('[data-role="oee"]');
    if (!node) return; // sensors and gateways have no OEE
    const row = byDevice.get(id);
    const apq = tile.node.querySelector('[data-role="oee-apq"]');
    if (!row || row.planned_seconds === 0) {
      node.textContent = "—";
      node.title = "No planned production time today (shift calendar)";
      apq.textContent = "";
      return;
    }
    const factors = `A ${percent(row.availability)} · P ${percent(row.performance)} · Q ${percent(row.quality)}`;
    node.textContent = percent(row.oee);
    node.dataset.value = row.oee ?? "";
    node.title = `OEE today ${percent(row.oee)}: ${factors}`;
    apq.textContent = factors.replaceAll(" %", "");
  });
}

async function readOee() {
  try {
    const body = await getJSON(`/api/v1/analytics/oee/?plant=${config.plant}&per_device=true`);
    showOee(body.devices || []);
  } catch (error) {
    if (error.status !== 404) console.warn("OEE", error);
  }
}

async function catchUp() {
  const body = await getJSON(`/api/v1/plants/${config.plant}/latest/`);
  for (const row of body.devices) applyReading(row.device, row);
  await Promise.all([readAlarmCounts(), readOee()]);
}

function onEvent(event) {
  if (event.kind === "telemetry") applyReading(event.device_id, event);
  else if (event.kind === "status") applyReading(event.device_id, { online: event.online });
  else if (event.kind === "alarm") readAlarmCounts();
}

new LiveStream({ subscriptions: [{ plant: config.plant }], onEvent, catchUp }).start();
setInterval(() => tiles.forEach((_, id) => render(id)), 1000);
setInterval(readOee, OEE_REFRESH_MS);
window.__overview = { readOee, readAlarmCounts }; // for tests and the console
