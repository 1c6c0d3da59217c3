// Devices waiting for approval (templates/devices/approvals.html). Approve and Reject are plain
// forms (the page reloads with a message); this script only keeps the list and the plant bar's
// badge current while the page is open: each "provisioning" event of the plant's live stream (a
// device asked, another admin decided) and each (re)connect reload the server-rendered list.
import { LiveStream, pageConfig } from "../js/live.js";

const config = pageConfig();
const list = document.getElementById("approvals");
const source = document.getElementById("approvals-source");

function showCount(count) {
  for (const badge of document.querySelectorAll('[data-role="approvals-badge"]')) {
    badge.firstChild.textContent = String(count);
    badge.hidden = count === 0;
  }
}

async function reload() {
  const response = await fetch(list.dataset.url, { headers: { Accept: "text/html" }, credentials: "same-origin" });
  if (!response.ok) throw new Error(`approvals: HTTP ${response.status}`);
  const focusedId = list.contains(document.activeElement) ? document.activeElement.closest("li")?.id : null;
  list.innerHTML = await response.text();
  const count = Number(list.querySelector("[data-count]")?.dataset.count || 0);
  showCount(count);
  source.textContent = count ? `${count} device(s) waiting.` : "No device waiting.";
  // Keep keyboard focus on the same card when it is still there.
  if (focusedId) document.getElementById(focusedId)?.querySelector("button")?.focus();
}

function onEvent(event) {
  if (event.kind === "provisioning") reload().catch((error) => console.warn(error.message));
}

new LiveStream({ subscriptions: [{ plant: config.plant }], onEvent, catchUp: reload }).start();
