// The browser side of /ws/live/ (README "Live dashboard"): one socket per page, subscriptions that
// change without reconnecting, reconnection with exponential backoff and jitter, and a REST
// catch-up after every (re)connect before buffered live events are applied.

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;
const OFFLINE_AFTER_MS = 10000; // "reconnecting" turns into "offline since …" after this long

const MAX_PRECISION = 6; // devices/models/telemetry.py::MAX_PRECISION

// The page's own settings (its "page-config" JSON) over the plant's formats (plantFormats): `tz`,
// the plant's IANA zone, and `metrics`, {name: {label, unit, precision}}. A page's own key wins:
// the machine page's `metrics` is its list of metric names, so read units through metricMeta().
export function pageConfig() {
  const node = document.getElementById("page-config");
  const own = node ? JSON.parse(node.textContent) : {};
  const { tz, metrics } = plantFormats();
  return { tz, metrics, ...own };
}

// How the plant's values and times read, from the "plant-formats" JSON of templates/plant_base.html
// (factory/pages.py::plant_formats); parsed once per node (formatValue runs for every reading).
let formatsNode;
let formats = { tz: undefined, metrics: {} };

export function plantFormats() {
  const node = document.getElementById("plant-formats");
  if (node !== formatsNode) {
    formatsNode = node;
    const parsed = node ? JSON.parse(node.textContent) : null;
    formats = { tz: parsed?.tz || undefined, metrics: parsed?.metrics || {} };
  }
  return formats;
}

export function metricMeta(name) {
  return plantFormats().metrics[name] || null;
}

// The display name of a metric ("count_total" → "Pieces made"), else its name in words.
export function metricLabel(name) {
  const meta = metricMeta(name);
  if (meta?.label) return meta.label;
  const words = String(name ?? "").replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export class ConnectionIndicator {
  constructor(node) {
    this.node = node;
    this.text = node ? node.querySelector(".conn-text") : null;
  }

  show(state, text) {
    if (!this.node) return;
    this.node.className = `conn conn-${state}`;
    this.node.dataset.state = state;
    this.text.textContent = text;
  }
}

export class LiveStream {
  // subscriptions: [{plant: 3}, {device: 7}]; onEvent(event); catchUp(): Promise run after each
  // (re)connect once the server confirmed the subscriptions (events arriving meanwhile wait).
  constructor({ subscriptions = [], onEvent, catchUp }) {
    this.subscriptions = subscriptions.map((s) => ({ ...s }));
    this.onEvent = onEvent;
    this.catchUp = catchUp || (() => Promise.resolve());
    this.indicator = new ConnectionIndicator(document.getElementById("conn"));
    this.attempt = 0;
    this.offlineSince = null;
    this.buffer = [];
    this.ready = false;
    this.stopped = false;
    this.connections = 0; // sockets opened (tests check that switching devices opens none)
    this.syncs = 0; // completed catch-ups
    window.addEventListener("online", () => this.reconnectNow());
    window.__live = this; // for tests and the console
  }

  url() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/ws/live/`;
  }

  start() {
    this.connect();
    return this;
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.ready = false;
    this.buffer = [];
    this.pending = new Set(this.subscriptions.map(key));
    const ws = new WebSocket(this.url());
    this.ws = ws;
    this.connections += 1;
    ws.onopen = () => {
      if (this.pending.size === 0) this.synchronise();
      for (const sub of this.subscriptions) ws.send(JSON.stringify({ action: "subscribe", ...sub }));
    };
    ws.onmessage = (message) => {
      const data = JSON.parse(message.data);
      // Events ready at the same moment arrive together as one array.
      for (const frame of Array.isArray(data) ? data : [data]) this.receive(ws, frame);
    };
    ws.onclose = (event) => this.closed(ws, event);
  }

  receive(ws, frame) {
    if (ws !== this.ws) return;
    if (frame.kind === "subscribed" || (frame.kind === "error" && this.pending.has(key(frame)))) {
      this.pending.delete(key(frame));
      if (frame.kind === "error") this.refused(frame);
      if (this.pending.size === 0 && !this.ready && !this.syncing) this.synchronise();
      return;
    }
    if (frame.kind === "error") {
      if (frame.close) this.refused(frame);
      else console.warn("live:", frame.detail);
      return;
    }
    if (["hello", "unsubscribed"].includes(frame.kind)) return;
    if (this.ready) this.dispatch(frame);
    else this.buffer.push(frame);
  }

  async synchronise() {
    // Fetch what was missed over REST, then apply what arrived meanwhile: no gap, no stale overwrite.
    this.syncing = true;
    try {
      await this.catchUp();
    } catch (error) {
      console.warn("live: catch-up failed", error);
    }
    this.syncing = false;
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.ready = true;
    this.syncs += 1;
    this.attempt = 0;
    this.offlineSince = null;
    const buffered = this.buffer;
    this.buffer = [];
    buffered.forEach((frame) => this.dispatch(frame));
    this.indicator.show("live", "Live");
    document.body.dataset.live = "ready";
  }

  dispatch(frame) {
    try {
      this.onEvent(frame);
    } catch (error) {
      console.error("live: event handler failed", error, frame);
    }
    // Page-wide listeners (static/js/toasts.js) get every live event too, whatever page owns the stream.
    document.dispatchEvent(new CustomEvent("live:event", { detail: frame }));
  }

  refused(frame) {
    if (frame.status === 401) {
      this.stopped = true;
      this.indicator.show("offline", "Session ended: log in again");
      const login = document.createElement("a");
      login.href = `/accounts/login/?next=${encodeURIComponent(location.pathname)}`;
      login.textContent = " Log in";
      this.indicator.node?.append(login);
    } else {
      this.indicator.show("error", frame.detail || "Refused");
    }
  }

  closed(ws, event) {
    if (ws !== this.ws) return;
    document.body.dataset.live = "closed";
    if (this.stopped || event.code === 4401 || event.code === 4403 || event.code === 4404) return;
    this.offlineSince = this.offlineSince || new Date();
    const delay = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** this.attempt);
    const wait = delay / 2 + Math.random() * (delay / 2); // jitter: a restarted server is not stampeded
    this.attempt += 1;
    const since = formatTime(this.offlineSince, { seconds: true });
    if (Date.now() - this.offlineSince.getTime() > OFFLINE_AFTER_MS) {
      this.indicator.show("offline", `Offline since ${since}; retrying in ${Math.ceil(wait / 1000)} s`);
    } else {
      this.indicator.show("reconnecting", `Reconnecting… (offline since ${since})`);
    }
    this.retryTimer = setTimeout(() => this.connect(), wait);
  }

  reconnectNow() {
    if (this.stopped || (this.ws && this.ws.readyState <= WebSocket.OPEN)) return;
    this.attempt = 0;
    this.connect();
  }

  subscribe(sub) {
    if (!this.subscriptions.some((s) => key(s) === key(sub))) this.subscriptions.push({ ...sub });
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ action: "subscribe", ...sub }));
  }

  unsubscribe(sub) {
    this.subscriptions = this.subscriptions.filter((s) => key(s) !== key(sub));
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ action: "unsubscribe", ...sub }));
  }
}

function key(sub) {
  return "plant" in sub ? `plant:${sub.plant}` : `device:${sub.device}`;
}

export async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (!response.ok) {
    const error = new Error(`${url}: HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

export function age(iso, now = Date.now()) {
  if (!iso) return "never";
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  return `${Math.floor(seconds / 86400)} d ago`;
}

// Decimal places `number` was written with: 0.06 → 2, 85 → 0 (thresholds show as entered).
export function decimalsOf(number) {
  const [mantissa, exponent] = Number(number).toExponential().split("e");
  const fraction = (mantissa.split(".")[1] || "").length;
  return Math.min(MAX_PRECISION, Math.max(0, fraction - Number(exponent)));
}

// Decimal places for values compared with thresholds: the metric's, never fewer than a threshold's.
export function rulePrecision(precision, ...thresholds) {
  const places = thresholds.filter((t) => t !== null && t !== undefined).map(decimalsOf);
  if (precision !== null && precision !== undefined) places.push(precision);
  return places.length ? Math.max(...places) : null;
}

const numberFormats = new Map();

// `value` with `precision` decimals and thousands separators; precision null: integers as such,
// others with 2 decimals (1 from 100). Same rules as devices/formats.py::format_number.
export function formatNumber(value, precision = null) {
  if (value === null || value === undefined || Number.isNaN(Number(value))) return "—";
  const number = Number(value);
  let places = precision;
  if (places === null || places === undefined) {
    places = Number.isInteger(number) ? 0 : Math.abs(number) >= 100 ? 1 : 2;
  }
  if (!numberFormats.has(places)) {
    const options = { minimumFractionDigits: places, maximumFractionDigits: places };
    numberFormats.set(places, new Intl.NumberFormat("en-US", options));
  }
  const text = numberFormats.get(places).format(number);
  return /^-[0.,]+$/.test(text) ? text.slice(1) : text; // -0.0004 at 2 places is 0.00
}

// A value with its metric's unit and precision: formatValue(61.43, "temperature") → "61.4 °C".
// `meta`: a metric name (looked up in the plant's formats) or {unit, precision}; without it (or an
// unknown name) the value keeps the automatic format without a unit. Options: `precision`
// overrides the metric's, `unit: false` leaves the unit out (a page showing it apart).
export function formatValue(value, meta, { precision, unit = true } = {}) {
  if (value === null || value === undefined) return "—";
  const info = typeof meta === "string" ? metricMeta(meta) : meta;
  if (!info) return formatNumber(value, precision);
  const text = formatNumber(value, precision ?? info.precision);
  return unit && info.unit ? `${text} ${info.unit}` : text;
}

// An OEE figure or factor (0-100): formatPercent(85.234) → "85.23 %".
export function formatPercent(value, precision = 2) {
  if (value === null || value === undefined) return "—";
  return `${formatNumber(value, precision)} %`;
}

// A threshold as it was entered, with the metric's unit: 0.06 → "0.06 mm/s", never "0.00".
export function formatThreshold(value, meta, options = {}) {
  if (value === null || value === undefined) return "—";
  return formatValue(value, meta, { ...options, precision: decimalsOf(value) });
}

const timeFormats = new Map();

function timeParts(moment, zone, seconds) {
  const key = `${zone || ""}|${seconds}`;
  if (!timeFormats.has(key)) {
    const options = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" };
    options.hourCycle = "h23"; // 00:30, never 24:30
    if (seconds) options.second = "2-digit";
    if (zone) options.timeZone = zone;
    timeFormats.set(key, new Intl.DateTimeFormat("en-GB", options));
  }
  return Object.fromEntries(timeFormats.get(key).formatToParts(moment).map((part) => [part.type, part.value]));
}

// uPlot's `values` of a time axis in the site's 24-hour format (uPlot's own reads "9:45pm 12/6/26"):
// per tick spacing (s), the label and, under the first tick of a new year/month/day/hour/minute, the
// context line, as uPlot's default table; with `tzDate: chartDate`, in the plant's zone.
const DAY = 86400;
export const TIME_TICKS = [
  [365 * DAY, "{YYYY}", null, null, null, null, null, null, 1],
  [28 * DAY, "{MMM}", "\n{YYYY}", null, null, null, null, null, 1],
  [DAY, "{MM}-{DD}", "\n{YYYY}", null, null, null, null, null, 1],
  [3600, "{HH}:{mm}", "\n{YYYY}-{MM}-{DD}", null, "\n{MM}-{DD}", null, null, null, 1],
  [60, "{HH}:{mm}", "\n{YYYY}-{MM}-{DD}", null, "\n{MM}-{DD}", null, null, null, 1],
  [1, ":{ss}", "\n{YYYY}-{MM}-{DD} {HH}:{mm}", null, "\n{MM}-{DD} {HH}:{mm}", null, "\n{HH}:{mm}", null, 1],
];

// A time series' `value` in the legend (uPlot's own writes "2026-12-06 9:45pm"): the plant's time.
export function chartTimeValue(u, seconds) {
  return seconds === null || seconds === undefined ? "—" : formatDateTime(new Date(seconds * 1000));
}

// uPlot's `tzDate` option (`{ tzDate: chartDate }`): a chart's time axis and legend in the plant's
// zone, as every other time on the page.
export function chartDate(seconds) {
  const date = new Date(seconds * 1000);
  const zone = plantFormats().tz;
  return zone && globalThis.uPlot?.tzDate ? globalThis.uPlot.tzDate(date, zone) : date;
}

// A time in the plant's zone (the plant bar names it): "14:05", with `date` "2026-12-06 14:05",
// with `seconds` "14:05:07". `tz` overrides the zone; outside a plant page, the browser's zone.
// Same format as devices/formats.py::format_time.
export function formatTime(iso, { date = false, seconds = false, tz } = {}) {
  if (iso === null || iso === undefined || iso === "") return "—";
  const moment = iso instanceof Date ? iso : new Date(iso);
  if (Number.isNaN(moment.getTime())) return "—";
  const parts = timeParts(moment, tz || plantFormats().tz, seconds);
  const time = `${parts.hour}:${parts.minute}${seconds ? `:${parts.second}` : ""}`;
  return date ? `${parts.year}-${parts.month}-${parts.day} ${time}` : time;
}

export function formatDateTime(iso, options = {}) {
  return formatTime(iso, { ...options, date: true });
}
