// The browser side of /ws/live/ (README "Live dashboard"): one socket per page, subscriptions that
// change without reconnecting, reconnection with exponential backoff and jitter, and a REST
// catch-up after every (re)connect before buffered live events are applied.

const BASE_DELAY_MS = 500;
const MAX_DELAY_MS = 15000;
const OFFLINE_AFTER_MS = 10000; // "reconnecting" turns into "offline since …" after this long

export function pageConfig() {
  const node = document.getElementById("page-config");
  return node ? JSON.parse(node.textContent) : {};
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
    const since = this.offlineSince.toLocaleTimeString();
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

export function formatValue(value) {
  if (value === null || value === undefined) return "—";
  return Number.isInteger(value) ? String(value) : value.toFixed(Math.abs(value) >= 100 ? 1 : 2);
}
