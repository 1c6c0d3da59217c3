// The machine page's Commands card (templates/commands/card.html, README "Device commands"): a form
// per catalogue command with fields built from its JSON schema (numbers, integers, booleans,
// strings, enums; anything else as JSON), sending with POST /api/v1/devices/<id>/commands/, and a
// history that follows each command's state live (events of kind "command" from the live bus).
import { formatDateTime, getJSON } from "../js/live.js";

let card = null; // the "commands-config" JSON: {device, catalogue: [...], history: [...]}
// States only move forward: a live "delivered" can arrive before the POST's own "pending" answer.
const RANK = { pending: 0, delivered: 1, succeeded: 2, failed: 2, expired: 2 };

function csrfToken() {
  return document.cookie.split("; ").find((c) => c.startsWith("csrftoken="))?.split("=")[1] || "";
}

function entry(name) {
  return (card?.catalogue || []).find((item) => item.name === name);
}

function fieldFor(key, spec, required) {
  const label = document.createElement("label");
  const text = document.createElement("span");
  text.textContent = `${spec.title || key}${required ? " *" : ""}`;
  label.append(text);
  let input;
  if (Array.isArray(spec.enum)) {
    input = document.createElement("select");
    for (const value of spec.enum) {
      const option = document.createElement("option");
      option.value = JSON.stringify(value);
      option.textContent = String(value);
      input.append(option);
    }
    if (spec.default !== undefined) input.value = JSON.stringify(spec.default);
    input.dataset.kind = "enum";
  } else if (spec.type === "boolean") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = Boolean(spec.default);
    input.dataset.kind = "boolean";
  } else if (spec.type === "number" || spec.type === "integer") {
    input = document.createElement("input");
    input.type = "number";
    input.step = spec.type === "integer" ? "1" : "any";
    if (spec.minimum !== undefined) input.min = spec.minimum;
    if (spec.maximum !== undefined) input.max = spec.maximum;
    if (spec.default !== undefined) input.value = spec.default;
    input.dataset.kind = spec.type;
  } else if (spec.type === "string") {
    input = document.createElement("input");
    input.type = "text";
    if (spec.maxLength !== undefined) input.maxLength = spec.maxLength;
    if (spec.default !== undefined) input.value = spec.default;
    input.dataset.kind = "string";
  } else {
    input = document.createElement("textarea");
    input.rows = 2;
    input.placeholder = "JSON";
    if (spec.default !== undefined) input.value = JSON.stringify(spec.default);
    input.dataset.kind = "json";
  }
  input.name = key;
  input.required = required;
  label.append(input);
  if (spec.description) {
    const hint = document.createElement("span");
    hint.className = "hint";
    hint.textContent = spec.description;
    label.append(hint);
  }
  return label;
}

function showParams() {
  const form = document.getElementById("command-form");
  if (!form) return;
  const chosen = entry(form.elements.name.value);
  const fieldset = document.getElementById("command-params");
  fieldset.replaceChildren(fieldset.querySelector("legend"));
  const schema = chosen?.schema || {};
  const required = new Set(schema.required || []);
  const properties = Object.entries(schema.properties || {});
  for (const [key, spec] of properties) fieldset.append(fieldFor(key, spec, required.has(key)));
  fieldset.hidden = properties.length === 0;
  document.getElementById("command-description").textContent = chosen?.description || "";
  form.elements.timeout.value = chosen?.timeout ?? "";
}

// The params object from the fields; throws with a message for a field that cannot be read.
function readParams(fieldset) {
  const params = {};
  for (const input of fieldset.querySelectorAll("input, select, textarea")) {
    const kind = input.dataset.kind;
    if (kind === "boolean") {
      params[input.name] = input.checked;
      continue;
    }
    if (input.value === "") {
      if (input.required) throw new Error(`${input.name}: required.`);
      continue;
    }
    if (kind === "number" || kind === "integer") params[input.name] = Number(input.value);
    else if (kind === "enum") params[input.name] = JSON.parse(input.value);
    else if (kind === "json") {
      try {
        params[input.name] = JSON.parse(input.value);
      } catch {
        throw new Error(`${input.name}: not valid JSON.`);
      }
    } else params[input.name] = input.value;
  }
  return params;
}

function status(text, error = false) {
  const node = document.getElementById("command-status");
  if (!node) return;
  node.textContent = text;
  node.classList.toggle("error", error);
}

async function send(event) {
  event.preventDefault();
  const form = event.target;
  let params;
  try {
    params = readParams(document.getElementById("command-params"));
  } catch (error) {
    status(error.message, true);
    return;
  }
  const body = { name: form.elements.name.value, params };
  if (form.elements.timeout.value) body.timeout = Number(form.elements.timeout.value);
  const button = document.getElementById("command-send");
  button.disabled = true;
  status("Sending…");
  try {
    const response = await fetch(`/api/v1/devices/${card.device}/commands/`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json", "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      status(answer.detail || `Not sent (HTTP ${response.status}).`, true);
      return;
    }
    upsert(answer);
    status(`Sent ${answer.name} (command ${answer.id}); waiting for the device.`);
  } catch (error) {
    status(`Not sent: ${error.message}`, true);
  } finally {
    button.disabled = false;
  }
}

function compact(value) {
  return value === null || value === undefined ? "" : JSON.stringify(value);
}

// Adds or updates one history row from a command's API/live shape (commands/events.py::command_data).
function upsert(command) {
  const list = document.getElementById("command-history");
  if (!list) return;
  let row = list.querySelector(`li[data-command="${command.id}"]`);
  if (!row) {
    row = document.createElement("li");
    row.dataset.command = command.id;
    row.innerHTML =
      '<strong data-role="name"></strong> <span class="cmd-state" data-role="state"></span> ' +
      '<code data-role="params"></code> <span data-role="result"></span> <span class="muted" data-role="meta"></span>';
    const newer = [...list.children].find((other) => Number(other.dataset.command) < command.id);
    list.insertBefore(row, newer || null);
  } else if ((RANK[row.dataset.state] ?? 0) > (RANK[command.state] ?? 0)) {
    return; // an older picture of a command already shown further along
  }
  row.dataset.state = command.state;
  row.querySelector('[data-role="name"]').textContent = command.name;
  const state = row.querySelector('[data-role="state"]');
  state.textContent = command.state;
  state.className = `cmd-state cmd-${command.state}`;
  row.querySelector('[data-role="params"]').textContent = compact(command.params);
  row.querySelector('[data-role="result"]').textContent = compact(command.result);
  const when = command.finished_at || command.delivered_at || command.created_at;
  row.querySelector('[data-role="meta"]').textContent = `${command.created_by || "—"}, ${formatDateTime(when, { seconds: true })}`;
  document.getElementById("no-commands").hidden = true;
}

// Live: a command of this device changed state.
export function commandEvent(event) {
  if (card && event.device_id === card.device && event.command) upsert(event.command);
}

// After a (re)connect: the newest commands from the API, so states missed while away show.
export async function refreshCommands() {
  if (!card) return;
  const page = await getJSON(`/api/v1/devices/${card.device}/commands/`);
  for (const command of [...(page.results || page)].reverse()) upsert(command);
}

export function mountCommands() {
  const node = document.getElementById("commands-config");
  card = node ? JSON.parse(node.textContent) : null;
  if (!card) return;
  for (const command of [...card.history].reverse()) upsert(command);
  const form = document.getElementById("command-form");
  if (form) {
    form.elements.name.addEventListener("change", showParams);
    form.addEventListener("submit", send);
    showParams();
  }
}
