// Rollout board: one card per rollout of the plant, rebuilt from each "rollout" event (a full
// snapshot: per-stage counts, failing devices, audit trail) on the plant's live stream. The
// catch-up after every (re)connect loads the same snapshots from this page's URL as JSON.
// Operators get the actions the rollouts API offers for the rollout's state (session + CSRF).
import { LiveStream, formatDateTime, getJSON, pageConfig } from "../js/live.js";

const config = pageConfig();
const board = document.getElementById("rollouts");
const source = document.getElementById("rollout-source");
const canOperate = board.dataset.canOperate === "true";
const ACTIONS = [
  // [action, label, states it applies to]
  ["start", "Start", ["draft"]],
  ["approve", "Approve next stage", ["running"]],
  ["pause", "Pause", ["running", "scheduled"]],
  ["resume", "Resume", ["paused"]],
  ["cancel", "Cancel", ["draft", "scheduled", "running", "paused"]],
];
const shown = new Map(); // rollout id -> last snapshot (events never go back in time per rollout)

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

function csrfToken() {
  return document.cookie.split("; ").find((c) => c.startsWith("csrftoken="))?.split("=")[1] || "";
}

async function act(rollout, action, button) {
  if (action === "cancel" && !window.confirm(`Cancel rollout "${rollout.name}"? Pending devices are told to stop.`)) return;
  button.disabled = true;
  const response = await fetch(`/api/v1/rollouts/${rollout.rollout_id}/${action}/`, {
    method: "POST",
    headers: { "X-CSRFToken": csrfToken(), Accept: "application/json", "Content-Type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify(action === "pause" ? { reason: "paused from the dashboard" } : {}),
  });
  button.disabled = false;
  const body = await response.json().catch(() => ({}));
  const detail = body.detail || body.non_field_errors?.[0] || (Array.isArray(body) ? body[0] : null);
  source.textContent = response.ok ? `${rollout.name}: ${action} done.` : `${action} failed: ${detail || `HTTP ${response.status}`}`;
  // The new state arrives as a live event; nothing to patch by hand.
}

function stageRow(stage, current) {
  const pct = (n) => (stage.total ? `${(100 * n) / stage.total}%` : "0%");
  const bar = el("div", {
    class: "bar",
    role: "progressbar",
    "aria-label": `Stage ${stage.stage}`,
    "aria-valuemin": "0",
    "aria-valuemax": String(stage.total),
    "aria-valuenow": String(stage.finished),
    "aria-valuetext": `${stage.finished} of ${stage.total} finished: ${stage.succeeded} succeeded, ${stage.failed} failed, ${stage.active} in progress`,
  });
  // Each segment is an empty SVG sized by its width attribute: the CSP refuses style="" attributes.
  for (const [kind, n] of [["succeeded", stage.succeeded], ["failed", stage.failed], ["active", stage.active]]) {
    const segment = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    for (const [name, value] of Object.entries({ class: `seg-${kind}`, width: pct(n), height: "100%", "aria-hidden": "true" })) {
      segment.setAttribute(name, value);
    }
    bar.append(segment);
  }
  return el(
    "li",
    { class: `stage${stage.stage === current ? " current" : ""}`, "data-stage": String(stage.stage) },
    el("span", { class: "stage-name", text: `Stage ${stage.stage}` }),
    bar,
    el("span", { class: "stage-text", "data-role": "stage-text", text: `${stage.succeeded}/${stage.total} ok, ${stage.failed} failed` }),
  );
}

function table(caption, headers, rows) {
  const head = el("tr", {}, ...headers.map((h) => el("th", { scope: "col", text: h })));
  const body = el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", { text: c ?? "—" })))));
  return el("table", { class: "grid" }, el("caption", { class: "muted", text: caption }), el("thead", {}, head), body);
}

function card(r) {
  const title = el("h2", { id: `rollout-${r.rollout_id}-title` }, r.name, " ", el("span", { class: "muted", text: r.version || "rollback" }));
  const head = el(
    "div",
    { class: "rollout-head" },
    title,
    el("span", { class: `badge state-${r.state}`, "data-role": "state", text: r.state.replace("_", " ") }),
    el("span", { "data-role": "stage", text: `stage ${r.current_stage} of ${r.stage_count}${r.awaiting_approval ? " (awaiting approval)" : ""}` }),
  );
  if (canOperate) {
    const actions = el("div", { class: "rollout-actions", role: "group", "aria-label": `Actions for ${r.name}` });
    for (const [action, label, states] of ACTIONS) {
      if (!states.includes(r.state) || (action === "approve" && !r.awaiting_approval)) continue;
      const button = el("button", { type: "button", class: "small", text: label });
      button.addEventListener("click", () => act(r, action, button));
      actions.append(button);
    }
    head.append(actions);
  }
  const node = el("article", {
    class: `rollout state-${r.state}`,
    id: `rollout-${r.rollout_id}`,
    "data-rollout": String(r.rollout_id),
    "data-state": r.state,
    "aria-labelledby": `rollout-${r.rollout_id}-title`,
  }, head);
  if (r.pause_reason) node.append(el("p", { class: "pause-reason", text: r.pause_reason }));
  node.append(el("ol", { class: "stages" }, ...r.stages.map((s) => stageRow(s, r.current_stage))));
  const counts = el("dl", { class: "counts", "data-role": "counts" });
  for (const [status, n] of Object.entries(r.counts)) {
    counts.append(el("div", { "data-status": status }, el("dt", { text: status.replace("_", " ") }), el("dd", { text: String(n) })));
  }
  node.append(counts);
  if (r.failing.length) {
    const rows = r.failing.map((f) => [f.uid, f.status.replace("_", " "), f.detail, f.at && formatDateTime(f.at)]);
    node.append(el("div", { "data-role": "failing" }, table("Failing devices, latest first", ["Device", "Status", "Last detail", "At"], rows)));
  }
  const audit = r.audit.map((e) => [formatDateTime(e.at), e.action.replace("_", " "), e.by, e.detail]);
  node.append(el("details", { "data-role": "audit" }, el("summary", { text: `Audit trail (${r.audit.length} latest)` }),
    table("Who did what, latest first", ["At", "Action", "By", "Detail"], audit)));
  return node;
}

function show(snapshot) {
  if (snapshot.plant_id !== undefined && snapshot.plant_id !== config.plant) return;
  shown.set(snapshot.rollout_id, snapshot);
  document.getElementById("no-rollouts")?.remove();
  const existing = document.getElementById(`rollout-${snapshot.rollout_id}`);
  const fresh = card(snapshot);
  const open = existing?.querySelector("details")?.open;
  if (open) fresh.querySelector("details").open = true;
  // Keep keyboard focus on the same button across a re-render.
  const focused = existing?.contains(document.activeElement) ? document.activeElement.textContent : null;
  if (existing) existing.replaceWith(fresh);
  else board.prepend(fresh);
  if (focused) [...fresh.querySelectorAll("button, summary")].find((b) => b.textContent === focused)?.focus();
}

async function catchUp() {
  const data = await getJSON(location.pathname);
  data.rollouts.slice().reverse().forEach(show);
}

function onEvent(event) {
  if (event.kind === "rollout") show(event);
}

const initial = JSON.parse(document.getElementById("rollout-snapshots").textContent);
initial.slice().reverse().forEach(show);
window.__rollouts = { shown };
new LiveStream({ subscriptions: [{ plant: config.plant }], onEvent, catchUp }).start();
