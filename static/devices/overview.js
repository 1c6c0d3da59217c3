// Plant overview (README "Overview"): the plant header (machines per state, sensors online, open
// alarms per severity, plant OEE today and this shift, the shift and its time left) over every
// device of the plant, and one tile per shown device (state and time in it, key value with its
// unit, sparkline, open alarms with the tile's edge in the worst one's colour, OEE today).
// Everything follows the plant's live stream; counts and OEE are re-read from their APIs, never
// added up from events, so the page always says what the OEE page and the alarm console say.
import {
  LiveStream,
  age,
  formatDateTime,
  formatPercent,
  formatTime,
  formatValue,
  getJSON,
  metricLabel,
  metricMeta,
  pageConfig,
} from "../js/live.js";

const SPARK_POINTS = 120;
const SPARK_HISTORY_MS = 15 * 60 * 1000;
const OEE_REFRESH_MS = 60 * 1000;
const OEE_AFTER_STATE_CHANGE_MS = 3 * 1000; // a machine changed state: OEE re-read soon, once for a burst
const SHIFT_ASK_EVERY_MS = 15 * 1000;
const SEVERITIES = ["critical", "warning", "info"];
const config = pageConfig(); // with the plant's zone (tz) and metric formats: every time shows in the plant's clock
const weekday = new Intl.DateTimeFormat("en-GB", { timeZone: config.tz, weekday: "short" });

// Every device of the plant (the header counts them all, whatever the tile filter), by id.
const devices = new Map();
for (const [id, device] of Object.entries(config.devices || {})) devices.set(Number(id), { ...device, online: true });

// The tiles on this page (the filter's devices).
const tiles = new Map();
for (const node of document.querySelectorAll(".tile")) {
  tiles.set(Number(node.dataset.device), {
    node,
    metric: node.dataset.metric || null,
    shown: null,
    xs: [],
    ys: [],
    plot: null,
  });
}

// What a tile shows (devices/selectors.py::tile_state says the same): offline when not heard from
// within three expected intervals, else a machine's state, a sensor's or gateway's "online".
function tileState(device) {
  const stale = !device.lastSeen || Date.now() - Date.parse(device.lastSeen) > device.expected * 3 * 1000;
  if (!device.online || stale) return "offline";
  if (device.kind !== "machine") return "online";
  return device.state || "unknown";
}

// Since when the tile's state holds: a machine state since its change, offline since the last message.
function stateSince(device, state) {
  if (state === "offline") return device.lastSeen;
  if (state === "online" || state === "unknown") return null;
  return device.since;
}

// "45 s", "12 min", "2 h 5 min", "3 d 4 h" (devices/views.py::duration_words writes the first paint).
export function duration(ms) {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return minutes % 60 ? `${hours} h ${minutes % 60} min` : `${hours} h`;
  const days = Math.floor(hours / 24);
  return hours % 24 ? `${days} d ${hours % 24} h` : `${days} d`;
}

function setText(node, text) {
  if (node && node.textContent !== text) node.textContent = text;
}

function renderTile(id) {
  const tile = tiles.get(id);
  const device = devices.get(id);
  if (!tile || !device) return;
  const state = tileState(device);
  if (tile.shown !== state) {
    // Only the state classes change: has-alarms and alarm-<severity> belong to the alarm counts.
    for (const name of [...tile.node.classList]) if (name.startsWith("state-")) tile.node.classList.remove(name);
    tile.node.classList.add(`state-${state}`);
    tile.node.dataset.state = state;
    setText(tile.node.querySelector('[data-role="state"]'), state.replace("_", " "));
    tile.shown = state;
  }
  const since = stateSince(device, state);
  const sinceNode = tile.node.querySelector('[data-role="since"]');
  setText(sinceNode, since ? `for ${duration(Date.now() - Date.parse(since))}` : "");
  if (since) sinceNode.title = `since ${formatDateTime(since)}`;
  else sinceNode.removeAttribute("title");
  setText(tile.node.querySelector('[data-role="seen"]'), age(device.lastSeen));
}

function showCounts(list, counts) {
  if (!list) return;
  for (const item of list.querySelectorAll("[data-state], [data-severity]")) {
    const n = counts[item.dataset.state || item.dataset.severity] || 0;
    setText(item.querySelector('[data-role="n"]'), String(n));
    item.classList.toggle("is-zero", n === 0);
    if (item.dataset.state === "unknown") item.hidden = n === 0;
  }
}

function renderStateCounts() {
  const machines = document.getElementById("machine-counts");
  const known = new Set([...(machines?.querySelectorAll("[data-state]") || [])].map((item) => item.dataset.state));
  const counts = { machines: {}, sensors: {} };
  devices.forEach((device) => {
    const group = device.kind === "machine" ? "machines" : "sensors";
    let state = tileState(device);
    if (group === "machines" && !known.has(state)) state = "unknown"; // a state the header has no place for
    counts[group][state] = (counts[group][state] || 0) + 1;
  });
  showCounts(machines, counts.machines);
  showCounts(document.getElementById("sensor-counts"), counts.sensors);
}

// Re-reads from an API never overlap; events arriving meanwhile cause exactly one more read.
function coalesced(read) {
  let running = null;
  let again = false;
  return function run() {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await read();
        } while (again);
      } finally {
        running = null;
      }
    })();
    return running;
  };
}

// ---- open alarms: the header per severity, each tile its count and its edge in the worst one's colour
function showAlarmCounts(plant) {
  showCounts(document.getElementById("alarm-counts"), plant);
  tiles.forEach((tile, id) => {
    const counts = plant.devices?.[id] || { total: 0 };
    const node = tile.node.querySelector('[data-role="alarms"]');
    const worst = SEVERITIES.find((severity) => counts[severity] > 0) || "";
    setText(node, String(counts.total));
    node.title = counts.total
      ? `Open alarms: ${counts.critical} critical, ${counts.warning} warning, ${counts.info} info; ` +
        `${counts.unacknowledged} unacknowledged, ${counts.shelved} shelved`
      : "No open alarms";
    tile.node.classList.toggle("has-alarms", counts.total > 0);
    for (const severity of SEVERITIES) tile.node.classList.toggle(`alarm-${severity}`, severity === worst);
    tile.node.dataset.alarm = worst;
  });
}

const readAlarmCounts = coalesced(async () => {
  try {
    const body = await getJSON(`/api/v1/alarms/counts/?plant=${config.plant}&per_device=true`);
    showAlarmCounts(body[config.plant] || { devices: {} });
  } catch (error) {
    if (error.status !== 404) console.warn("alarm counts", error);
  }
});

// ---- the shift: name, time left (every second), its span in the plant's clock
let shift = config.shift || null;
let nextShift = config.nextShift || null;
let shiftAskedAt = 0;

function renderShift() {
  const box = document.getElementById("shift");
  if (!box) return;
  const now = Date.now();
  const due = (shift && Date.parse(shift.end) <= now) || (!shift && nextShift && Date.parse(nextShift.start) <= now);
  if (due && now - shiftAskedAt > SHIFT_ASK_EVERY_MS) {
    shiftAskedAt = now; // the shift ended or the next one began: ask which one runs now (a clock
    readShift(); // running ahead of the server's gets the old answer: ask again a little later)
  }
  box.dataset.running = shift ? "1" : "0";
  const range = box.querySelector('[data-role="range"]');
  if (shift) {
    setText(box.querySelector('[data-role="name"]'), shift.name);
    setText(box.querySelector('[data-role="left"]'), `${duration(Math.max(0, Date.parse(shift.end) - now))} left`);
    setText(range, `${formatTime(shift.start)}–${formatTime(shift.end)}`);
  } else {
    setText(box.querySelector('[data-role="name"]'), "No shift");
    setText(box.querySelector('[data-role="left"]'), nextShift ? `next: ${nextShift.name}` : "none planned");
    const start = nextShift && new Date(nextShift.start);
    setText(range, start ? `from ${weekday.format(start)} ${formatTime(start)}` : "");
  }
}

const readShift = coalesced(async () => {
  try {
    const body = await getJSON(`/api/v1/shifts/current/?plant=${config.plant}`);
    const changed = (body.current?.start || null) !== (shift?.start || null);
    shift = body.current;
    nextShift = body.next;
    renderShift();
    if (changed) readOee();
  } catch (error) {
    console.warn("shift", error);
  }
});

// ---- OEE: the plant's today and this shift (header), each machine's today (tiles), from the OEE API
// "A 90.00 % · P 83.33 % · Q 95.00 %"
function factorsText(oee) {
  return `A ${formatPercent(oee.availability)} · P ${formatPercent(oee.performance)} · Q ${formatPercent(oee.quality)}`;
}

function showPlantOee(node, body, what) {
  const total = body.total;
  node.dataset.start = body.start;
  node.dataset.end = body.end;
  node.dataset.value = total.oee ?? "";
  setText(node, formatPercent(total.oee));
  node.title = total.planned_seconds
    ? `OEE ${what} ${formatPercent(total.oee)}: ${factorsText(total)}`
    : `No planned production time ${what} (shift calendar)`;
}

function showMachineOee(rows) {
  const byDevice = new Map(rows.map((row) => [row.device, row]));
  tiles.forEach((tile, id) => {
    const node = tile.node.querySelector('[data-role="oee"]');
    if (!node) return; // sensors and gateways have no OEE
    const row = byDevice.get(id);
    const apq = tile.node.querySelector('[data-role="oee-apq"]');
    if (!row || row.planned_seconds === 0) {
      setText(node, "—");
      node.title = "No planned production time today (shift calendar)";
      setText(apq, "");
      return;
    }
    const factors = factorsText(row);
    setText(node, formatPercent(row.oee));
    node.dataset.value = row.oee ?? "";
    node.title = `OEE today ${formatPercent(row.oee)}: ${factors}`;
    setText(apq, factors.replaceAll(" %", ""));
  });
}

const readOee = coalesced(async () => {
  const plant = `/api/v1/analytics/oee/?plant=${config.plant}`;
  const shiftNode = document.getElementById("oee-shift");
  const reads = [
    getJSON(`${plant}&per_device=true`).then((body) => {
      showPlantOee(document.getElementById("oee-today"), body, "today");
      showMachineOee(body.devices || []);
    }),
  ];
  if (shift) {
    const since = encodeURIComponent(shift.start);
    reads.push(getJSON(`${plant}&start=${since}`).then((body) => showPlantOee(shiftNode, body, "this shift")));
  } else if (shiftNode) {
    setText(shiftNode, "—");
    shiftNode.title = "No shift is running";
    for (const key of ["start", "end", "value"]) delete shiftNode.dataset[key];
  }
  for (const result of await Promise.allSettled(reads)) {
    if (result.status === "rejected" && result.reason?.status !== 404) console.warn("OEE", result.reason);
  }
});

let oeeTimer = null;
function readOeeSoon() {
  if (oeeTimer) return;
  oeeTimer = setTimeout(() => {
    oeeTimer = null;
    readOee();
  }, OEE_AFTER_STATE_CHANGE_MS);
}

// ---- readings
// A metric new to the plant since the page loaded is not in the page's formats: its unit, precision
// and display name are asked once from the metrics API, and its tiles redrawn when they arrive.
const fetchedMetas = new Map(); // name → {label, unit, precision}, or null while asked / unknown

function metaOf(name) {
  const known = metricMeta(name);
  if (known || fetchedMetas.has(name)) return known || fetchedMetas.get(name);
  fetchedMetas.set(name, null);
  getJSON(`/api/v1/metrics/?name=${encodeURIComponent(name)}`)
    .then((body) => {
      const row = (body.results || body)[0];
      if (!row) return;
      fetchedMetas.set(name, { label: row.label, unit: row.unit, precision: row.precision });
      tiles.forEach((tile) => tile.metric === name && showValue(tile));
    })
    .catch((error) => console.warn("metric formats", error));
  return null;
}

function showValue(tile) {
  if (tile.value === undefined) return;
  const meta = metaOf(tile.metric);
  setText(tile.node.querySelector('[data-role="metric"]'), meta?.label || metricLabel(tile.metric));
  setText(tile.node.querySelector('[data-role="value"]'), formatValue(tile.value, meta, { unit: false }));
  setText(tile.node.querySelector('[data-role="unit"]'), meta?.unit || "");
}

function pickMetric(values) {
  for (const name of config.keyMetrics || []) if (name in values) return name;
  return Object.keys(values).sort()[0] || null;
}

function applyReading(id, { values, state, state_since: since, online, last_seen_at: lastSeen }) {
  const device = devices.get(id);
  if (!device) return; // added after the page loaded: it shows after a reload
  const before = tileState(device);
  if (lastSeen && (!device.lastSeen || Date.parse(lastSeen) >= Date.parse(device.lastSeen))) device.lastSeen = lastSeen;
  if (state !== undefined && state !== null) device.state = state;
  if (since !== undefined) device.since = since;
  if (online !== undefined) device.online = online;
  const tile = tiles.get(id);
  if (tile) {
    tile.metric = tile.metric || pickMetric(values || {});
    const reading = values?.[tile.metric];
    if (reading) {
      tile.value = reading.value;
      showValue(tile);
      pushSpark(tile, Date.parse(reading.ts) / 1000, reading.value);
    }
    renderTile(id);
  }
  if (tileState(device) !== before) {
    renderStateCounts();
    if (device.kind === "machine") readOeeSoon();
  }
}

// ---- sparklines, drawn only for tiles on screen (500 uPlot instances at load would cost the first paint)
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

const observer = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    if (!entry.isIntersecting) continue;
    const id = Number(entry.target.dataset.device);
    observer.unobserve(entry.target);
    drawSpark(tiles.get(id));
    loadSpark(id);
  }
});
tiles.forEach((tile) => observer.observe(tile.node));

// ---- the stream
async function catchUp() {
  const body = await getJSON(`/api/v1/plants/${config.plant}/latest/`);
  for (const row of body.devices) applyReading(row.device, row);
  renderStateCounts();
  await Promise.all([readAlarmCounts(), readOee(), readShift()]);
}

function onEvent(event) {
  if (event.kind === "telemetry") applyReading(event.device_id, event);
  else if (event.kind === "status") applyReading(event.device_id, { online: event.online });
  else if (event.kind === "alarm") readAlarmCounts();
}

function tick() {
  tiles.forEach((_, id) => renderTile(id));
  renderStateCounts(); // devices fall offline by time alone
  renderShift();
}

tick();
new LiveStream({ subscriptions: [{ plant: config.plant }], onEvent, catchUp }).start();
setInterval(tick, 1000);
setInterval(readOee, OEE_REFRESH_MS);
window.__overview = { readOee, readAlarmCounts, readShift }; // for tests and the console
