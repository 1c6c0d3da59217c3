// Alarm console: the plant's alarms from /api/v1/alarms/ when that API exists, then live "alarm"
// events from the plant's group (upserted by id). Operators get acknowledge/shelve/resolve buttons.
import { LiveStream, getJSON, pageConfig } from "../js/live.js";

const config = pageConfig();
const table = document.getElementById("alarm-table");
const rows = document.getElementById("alarm-rows");
const source = document.getElementById("alarm-source");
const canOperate = table.dataset.canOperate === "true";
const CLOSED = ["resolved", "closed", "ok"];
// README "Alarms and notifications": shelve needs a reason and a duration, resolve a note.
const BODIES = {
  shelve: { reason: "Shelved from the alarm console", minutes: 60 },
  resolve: { note: "Resolved from the alarm console" },
};
const ACTIONS = [
  ["acknowledge", "Acknowledge"],
  ["shelve", "Shelve"],
  ["resolve", "Resolve"],
];

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text ?? "—";
  return td;
}

function csrfToken() {
  return document.cookie.split("; ").find((c) => c.startsWith("csrftoken="))?.split("=")[1] || "";
}

async function act(alarm, action, button) {
  button.disabled = true;
  const response = await fetch(`/api/v1/alarms/${alarm.id}/${action}/`, {
    method: "POST",
    headers: { "X-CSRFToken": csrfToken(), Accept: "application/json", "Content-Type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify(BODIES[action] || {}),
  });
  button.disabled = false;
  const body = await response.json().catch(() => ({}));
  if (!response.ok) source.textContent = `${action} failed: ${body.detail || `HTTP ${response.status}`}`;
  else upsert(body.alarm || body);
}

function upsert(alarm) {
  rows.querySelector(".empty-row")?.remove();
  let row = rows.querySelector(`tr[data-alarm="${CSS.escape(String(alarm.id))}"]`);
  const fresh = !row;
  if (fresh) {
    row = document.createElement("tr");
    row.dataset.alarm = alarm.id;
  }
  row.replaceChildren();
  const severity = cell(alarm.severity);
  severity.className = `sev sev-${alarm.severity || "unknown"}`;
  const device = alarm.device_id ?? alarm.device;
  row.append(
    severity,
    cell(config.devices?.[device] || device),
    cell(alarm.message),
    cell(alarm.state),
    cell(new Date(alarm.at || alarm.since || alarm.raised_at || Date.now()).toLocaleString()),
  );
  const actions = document.createElement("td");
  if (canOperate && !CLOSED.includes(alarm.state)) {
    for (const [action, label] of ACTIONS) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "small";
      button.textContent = label;
      button.addEventListener("click", () => act(alarm, action, button));
      actions.append(button);
    }
  }
  row.append(actions);
  row.classList.toggle("closed", CLOSED.includes(alarm.state));
  if (fresh) rows.prepend(row);
}

async function catchUp() {
  try {
    const list = await getJSON(`/api/v1/alarms/?plant=${config.plant}&open=true`);
    (list.results || list).forEach(upsert);
    source.textContent = "Alarms of this plant; new ones appear live.";
  } catch (error) {
    source.textContent =
      error.status === 404
        ? "Live: alarms appear here as they are raised (the alarm history API is not installed yet)."
        : `Could not load the alarm list (${error.message}); live alarms still appear.`;
  }
}

function onEvent(event) {
  if (event.kind === "alarm") upsert(event);
}

new LiveStream({ subscriptions: [{ plant: config.plant }], onEvent, catchUp }).start();
