// Alarm console (ISA-18.2 alarm summary): the plant's open alarms from /api/v1/alarms/, kept live
// from the plant's "alarm" events (each re-read from /api/v1/alarms/<id>/ for the full row).
// Critical first, then oldest; plain-language states; only the actions valid in each state; a
// shelve dialog; filters in the URL; keyboard: ↑/↓ move, a acknowledge, s shelve, Enter history.
import {
  LiveStream,
  formatDateTime,
  formatThreshold,
  formatValue,
  getJSON,
  metricMeta,
  pageConfig,
  rulePrecision,
} from "../js/live.js";

const config = pageConfig();
const rows = document.getElementById("alarm-rows");
const source = document.getElementById("alarm-source");
const filterForm = document.getElementById("alarm-filters");
const dialog = document.getElementById("shelve-dialog");
const shelveForm = document.getElementById("shelve-form");
const shelveError = document.getElementById("shelve-error");
const RANK = { critical: 0, warning: 1, info: 2 };
const FILTERS = ["line", "severity", "state", "shelved"];
const alarms = new Map(); // id → the API's alarm row
const openHistory = new Set(); // alarm ids whose history is shown
// A link to one alarm (e-mail, toast: /plants/<id>/alarms/#alarm-<id>) starts with that alarm in focus.
let focusedId = Number((location.hash.match(/^#alarm-(\d+)$/) || [])[1]) || null;
let shelving = null; // the alarm the dialog shelves

function csrfToken() {
  return document.cookie.split("; ").find((c) => c.startsWith("csrftoken="))?.split("=")[1] || "";
}

export function age(since, now = Date.now()) {
  const minutes = Math.max(0, Math.floor((now - new Date(since).getTime()) / 60000));
  if (minutes < 1) return "just now";
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

// An alarm's value and its rule's limit with the metric's unit; values with the rule's precision
// (never fewer decimals than its thresholds), thresholds as entered. Same rules as alerts/display.py.
const SIGNS = { gt: ">", gte: "≥", lt: "<", lte: "≤" };

function ruleMeta(alarm) {
  const meta = metricMeta(alarm.metric) || { unit: "", precision: null };
  const thresholds = [alarm.threshold, alarm.threshold_high, alarm.clear_threshold, alarm.clear_threshold_high];
  const unit = alarm.condition === "rate" && meta.unit ? `${meta.unit}/min` : meta.unit;
  return { ...meta, unit, precision: rulePrecision(meta.precision, ...thresholds) };
}

export function limitText(alarm) {
  const meta = ruleMeta(alarm);
  if (alarm.threshold === null || alarm.threshold === undefined) return "";
  if (SIGNS[alarm.condition]) return `${SIGNS[alarm.condition]} ${formatThreshold(alarm.threshold, meta)}`;
  if (alarm.condition === "outside") {
    return `outside ${formatThreshold(alarm.threshold, meta)} – ${formatThreshold(alarm.threshold_high, meta)}`;
  }
  if (alarm.condition === "rate") return `changing by more than ${formatThreshold(alarm.threshold, meta)}`;
  return "";
}

export function valueText(alarm) {
  return alarm.value === null || alarm.value === undefined ? "" : formatValue(alarm.value, ruleMeta(alarm));
}

// Which actions an alarm offers now (the API refuses the others anyway).
function actionsFor(alarm) {
  const open = alarm.state !== "closed";
  const list = [];
  if (config.canOperate && open) {
    if (alarm.state === "active_unack" || alarm.state === "cleared_unack") list.push(["acknowledge", "Acknowledge"]);
    list.push(alarm.shelved ? ["unshelve", "Unshelve"] : ["shelve", "Shelve…"]);
    list.push(["resolve", "Resolve…"]);
  }
  if (config.canManage && open) list.push(alarm.suppressed ? ["unsuppress", "Unsuppress"] : ["suppress", "Suppress"]);
  list.push(["history", openHistory.has(alarm.id) ? "Hide history" : "History"]);
  return list;
}

function filters() {
  const params = new URLSearchParams(location.search);
  return Object.fromEntries(FILTERS.map((name) => [name, params.get(name) || ""]));
}

function visible(alarm, chosen) {
  if (alarm.state === "closed") return false;
  if (chosen.line && String(alarm.line) !== chosen.line) return false;
  if (chosen.severity && alarm.severity !== chosen.severity) return false;
  if (chosen.state && alarm.state !== chosen.state) return false;
  if (chosen.shelved && String(Boolean(alarm.shelved)) !== chosen.shelved) return false;
  return true;
}

function ordered() {
  const chosen = filters();
  return [...alarms.values()]
    .filter((alarm) => visible(alarm, chosen))
    .sort(
      (a, b) =>
        (RANK[a.severity] ?? 9) - (RANK[b.severity] ?? 9) ||
        new Date(a.raised_at) - new Date(b.raised_at) ||
        a.id - b.id,
    );
}

function td(label, ...children) {
  const cell = document.createElement("td");
  cell.dataset.label = label;
  cell.append(...children);
  return cell;
}

function span(className, text) {
  const node = document.createElement("span");
  node.className = className;
  node.textContent = text ?? "—";
  return node;
}

function alarmRow(alarm) {
  const row = document.createElement("tr");
  row.id = `alarm-${alarm.id}`; // the target of links to this alarm
  row.dataset.alarm = alarm.id;
  row.dataset.state = alarm.state;
  row.dataset.severity = alarm.severity;
  row.className = `sev-${alarm.severity}${alarm.state.endsWith("_unack") ? " unack" : ""}`;
  row.tabIndex = alarm.id === focusedId ? 0 : -1;
  const [label, meaning] = config.states?.[alarm.state] || [alarm.state, ""];
  const device = alarm.device_uid || config.devices?.[alarm.device] || alarm.device;
  const message = document.createElement("div");
  message.append(span("alarm-message", alarm.message));
  const value = valueText(alarm);
  const limit = limitText(alarm);
  if (value || limit) {
    const parts = [value && `Value ${value}`, limit && `limit ${limit}`].filter(Boolean);
    message.append(span("alarm-reading", parts.join(", ")));
  }
  if (alarm.action) message.append(span("alarm-action", alarm.action));
  const state = document.createElement("div");
  state.append(span("state-label", label), span("state-meaning", meaning));
  if (alarm.shelved) {
    const until = alarm.shelved_until ? ` until ${formatDateTime(alarm.shelved_until)}` : "";
    const overlay = span("overlay shelved", `Shelved${until}`);
    if (alarm.shelved_reason) overlay.title = `Reason: ${alarm.shelved_reason}`;
    state.append(overlay);
  }
  if (alarm.suppressed) state.append(span("overlay suppressed", "Suppressed (out of service)"));
  const deviceCell = document.createElement("div");
  deviceCell.append(span("device-uid", device));
  if (alarm.device_state) deviceCell.append(span("device-state", `Machine: ${alarm.device_state.replace("_", " ")}`));
  const ageNode = span("age", age(alarm.raised_at));
  ageNode.dataset.since = alarm.raised_at;
  ageNode.title = `Raised ${formatDateTime(alarm.raised_at, { seconds: true })}`;
  const actions = td("Actions");
  actions.className = "actions";
  for (const [action, text] of actionsFor(alarm)) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "small";
    button.dataset.action = action;
    button.textContent = text;
    if (action === "history") button.setAttribute("aria-expanded", String(openHistory.has(alarm.id)));
    actions.append(button);
  }
  row.append(
    td("Severity", span("sev-label", alarm.severity)),
    td("Device", deviceCell),
    td("Alarm", message),
    td("State", state),
    td("Age", ageNode),
    actions,
  );
  return row;
}

function render() {
  const list = ordered();
  if (!list.some((alarm) => alarm.id === focusedId)) focusedId = list[0]?.id ?? null;
  const hadFocus = rows.contains(document.activeElement);
  const focusedButton = document.activeElement?.dataset?.action;
  const fragment = document.createDocumentFragment();
  for (const alarm of list) {
    fragment.append(alarmRow(alarm));
    if (openHistory.has(alarm.id)) fragment.append(historyRow(alarm));
  }
  if (list.length === 0) {
    const empty = document.createElement("tr");
    empty.className = "empty-row";
    empty.append(td("", alarms.size ? "No alarm matches these filters." : "No active alarms."));
    empty.firstChild.colSpan = 6;
    empty.firstChild.className = "empty";
    fragment.append(empty);
  }
  rows.replaceChildren(fragment);
  if (hadFocus && focusedId !== null) {
    // Keep the keyboard where it was: the same button if it is still offered, else its alarm.
    const row = rowOf(focusedId);
    const button = focusedButton && row.querySelector(`button[data-action="${focusedButton}"]`);
    (button || row).focus();
  }
}

function rowOf(id) {
  return rows.querySelector(`tr[data-alarm="${CSS.escape(String(id))}"]`);
}

const historyCache = new Map(); // id → events (reloaded each time the history opens)
const VALUE_EVENTS = new Set(["raised", "returned", "cleared"]); // the transitions a reading caused

function historyRow(alarm) {
  const row = document.createElement("tr");
  row.className = "alarm-history";
  row.dataset.historyOf = alarm.id;
  const cell = document.createElement("td");
  cell.colSpan = 6;
  const events = historyCache.get(alarm.id);
  if (!events) cell.textContent = "Loading history…";
  else if (events.error) cell.textContent = `Could not load the history (${events.error}).`;
  else {
    const list = document.createElement("ol");
    list.setAttribute("aria-label", `History of alarm ${alarm.id}`);
    for (const event of events) {
      const item = document.createElement("li");
      const who = event.user ? ` by ${event.user}` : "";
      const comment = event.comment ? ` — ${event.comment}` : "";
      const known = VALUE_EVENTS.has(event.kind) && event.value !== null && event.value !== undefined;
      const value = known ? ` at ${formatValue(event.value, ruleMeta(alarm))}` : "";
      item.textContent = `${formatDateTime(event.at, { seconds: true })}: ${event.kind}${value}${who}${comment}`;
      list.append(item);
    }
    cell.append(list);
  }
  row.append(cell);
  return row;
}

// The events list is paginated like every list; one page of 1,000 holds any alarm's history.
async function alarmHistory(id) {
  return (await getJSON(`/api/v1/alarms/${id}/events/?page_size=1000`)).results;
}

async function toggleHistory(alarm) {
  if (openHistory.has(alarm.id)) {
    openHistory.delete(alarm.id);
    render();
    return;
  }
  openHistory.add(alarm.id);
  historyCache.delete(alarm.id);
  render();
  try {
    historyCache.set(alarm.id, await alarmHistory(alarm.id));
  } catch (error) {
    historyCache.set(alarm.id, { error: error.message });
  }
  render();
}

async function post(alarm, action, body = {}) {
  const response = await fetch(`/api/v1/alarms/${alarm.id}/${action}/`, {
    method: "POST",
    headers: { "X-CSRFToken": csrfToken(), Accept: "application/json", "Content-Type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (response.ok) {
    alarms.set(answer.id, answer);
    if (openHistory.has(answer.id)) refreshHistory(answer.id);
    render();
  }
  return { ok: response.ok, answer, status: response.status };
}

async function refreshHistory(id) {
  try {
    historyCache.set(id, await alarmHistory(id));
  } catch (error) {
    historyCache.set(id, { error: error.message });
  }
  render();
}

function errorText(answer, status) {
  if (answer.detail) return answer.detail;
  const fields = Object.entries(answer).map(([name, errors]) => `${name}: ${[].concat(errors).join(" ")}`);
  return fields.join("; ") || `HTTP ${status}`;
}

async function act(alarm, action) {
  if (action === "history") return toggleHistory(alarm);
  if (action === "shelve") return openShelve(alarm);
  if (action === "resolve") return openResolve(alarm);
  const { ok, answer, status } = await post(alarm, action);
  source.textContent = ok ? answer.detail || `${action} done.` : `${action} failed: ${errorText(answer, status)}`;
}

function openShelve(alarm) {
  if (!config.canOperate || alarm.shelved || alarm.state === "closed") return;
  shelving = alarm;
  shelveError.textContent = "";
  shelveForm.reason.value = "";
  document.getElementById("shelve-which").textContent = `${alarm.device_uid || ""}: ${alarm.message}`;
  dialog.showModal();
  shelveForm.reason.focus();
}

shelveForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!shelveForm.reportValidity() || !shelving) return;
  const body = { reason: shelveForm.reason.value.trim(), minutes: Number(shelveForm.minutes.value) };
  const { ok, answer, status } = await post(shelving, "shelve", body);
  if (!ok) {
    shelveError.textContent = errorText(answer, status);
    return;
  }
  focusedId = shelving.id;
  shelving = null;
  dialog.close();
  source.textContent = answer.detail || "Shelved.";
  rowOf(focusedId)?.focus();
});
document.getElementById("shelve-cancel").addEventListener("click", () => dialog.close());
dialog.addEventListener("close", () => {
  if (shelving) rowOf(shelving.id)?.focus();
  shelving = null;
});

// Resolve closes the alarm with a required note (README "Alarms and notifications").
const resolveDialog = document.getElementById("resolve-dialog");
const resolveForm = document.getElementById("resolve-form");
let resolving = null;

function openResolve(alarm) {
  resolving = alarm;
  resolveForm.note.value = "";
  document.getElementById("resolve-error").textContent = "";
  resolveDialog.showModal();
  resolveForm.note.focus();
}

resolveForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!resolveForm.reportValidity() || !resolving) return;
  const { ok, answer, status } = await post(resolving, "resolve", { note: resolveForm.note.value.trim() });
  if (!ok) {
    document.getElementById("resolve-error").textContent = errorText(answer, status);
    return;
  }
  resolving = null;
  resolveDialog.close();
  source.textContent = answer.detail || "Resolved.";
});
document.getElementById("resolve-cancel").addEventListener("click", () => resolveDialog.close());
resolveDialog.addEventListener("close", () => {
  if (resolving) rowOf(resolving.id)?.focus();
  resolving = null;
});

rows.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  const row = event.target.closest("tr[data-alarm]");
  if (!row) return;
  focusedId = Number(row.dataset.alarm);
  if (button) act(alarms.get(focusedId), button.dataset.action);
});

rows.addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  const row = event.target.closest("tr[data-alarm]");
  if (!row) return;
  const onRow = event.target === row;
  const list = [...rows.querySelectorAll("tr[data-alarm]")];
  const index = list.indexOf(row);
  const alarm = alarms.get(Number(row.dataset.alarm));
  let target = null;
  if (event.key === "ArrowDown") target = list[Math.min(index + 1, list.length - 1)];
  else if (event.key === "ArrowUp") target = list[Math.max(index - 1, 0)];
  else if (event.key === "Home") target = list[0];
  else if (event.key === "End") target = list[list.length - 1];
  else if (onRow && event.key === "a" && actionsFor(alarm).some(([name]) => name === "acknowledge")) {
    event.preventDefault();
    act(alarm, "acknowledge");
    return;
  } else if (onRow && event.key === "s") {
    event.preventDefault();
    openShelve(alarm);
    return;
  } else if (onRow && event.key === "Enter") {
    event.preventDefault();
    toggleHistory(alarm);
    return;
  } else return;
  event.preventDefault();
  focusedId = Number(target.dataset.alarm);
  for (const other of list) other.tabIndex = other === target ? 0 : -1;
  target.focus();
});

rows.addEventListener("focusin", (event) => {
  const row = event.target.closest("tr[data-alarm]");
  if (row) focusedId = Number(row.dataset.alarm);
});

// Filters live in the URL (?line=&severity=&state=&shelved=): a bookmark or reload keeps them.
function showFilters() {
  const chosen = filters();
  for (const name of FILTERS) filterForm.elements[name].value = chosen[name];
}
filterForm.addEventListener("change", () => {
  const params = new URLSearchParams(location.search);
  for (const name of FILTERS) {
    const value = filterForm.elements[name].value;
    if (value) params.set(name, value);
    else params.delete(name);
  }
  const query = params.toString();
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
  render();
});
filterForm.addEventListener("submit", (event) => event.preventDefault());

// Live age: one timer updates every shown age (no re-render, focus stays where it is).
setInterval(() => {
  for (const node of rows.querySelectorAll(".age[data-since]")) node.textContent = age(node.dataset.since);
}, 20000);

async function catchUp() {
  try {
    let url = `/api/v1/alarms/?plant=${config.plant}&open=true&page_size=1000`;
    const fresh = new Map();
    while (url) {
      const page = await getJSON(url);
      for (const alarm of page.results || page) fresh.set(alarm.id, alarm);
      url = page.next || null;
    }
    alarms.clear();
    fresh.forEach((alarm, id) => alarms.set(id, alarm));
    source.textContent = "Open alarms of this plant, critical first then oldest; new ones appear live.";
  } catch (error) {
    source.textContent = `Could not load the alarm list (${error.message}); live alarms still appear.`;
  }
  render();
}

// The machine's state on its alarms follows the device's telemetry events (they carry "state").
function onTelemetry(event) {
  let changed = false;
  for (const alarm of alarms.values()) {
    if (alarm.device === event.device_id && event.state && alarm.device_state !== event.state) {
      alarm.device_state = event.state;
      changed = true;
    }
  }
  if (changed) render();
}

async function onEvent(event) {
  if (event.plant_id !== config.plant) return;
  if (event.kind === "telemetry") return onTelemetry(event);
  if (event.kind !== "alarm") return;
  // The event is the short shape (alerts/events.py); the row has what the console shows.
  try {
    alarms.set(event.id, await getJSON(`/api/v1/alarms/${event.id}/`));
  } catch (error) {
    const known = alarms.get(event.id) || {};
    alarms.set(event.id, { ...known, ...event, device: event.device_id, rule_name: event.rule });
  }
  if (openHistory.has(event.id)) refreshHistory(event.id);
  render();
}

showFilters();
window.addEventListener("popstate", () => {
  showFilters();
  render();
});
new LiveStream({ subscriptions: [{ plant: config.plant }], onEvent, catchUp }).start();
