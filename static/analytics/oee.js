// OEE page: today and current shift per machine, trend (uPlot), losses Pareto, stops to classify.
// Everything comes from the public API (GET /api/v1/analytics/oee/, /analytics/stops/, /reason-codes/).
// Times and the trend's axis are in the plant's zone (static/js/live.js).
import { TIME_TICKS, chartDate, chartTimeValue, formatDateTime, formatPercent } from "../js/live.js";

(function () {
  "use strict";
  const root = document.getElementById("oee-root");
  if (!root) return;
  const plant = root.dataset.plant;
  const line = root.dataset.line;
  const target = line ? { line: line } : { plant: plant };
  const errorBox = document.getElementById("oee-error");
  const csrf = (document.querySelector("input[name=csrfmiddlewaretoken]") || {}).value;
  const LOSSES = {
    equipment_failure: "Equipment failure", setup_adjustment: "Setup and adjustment",
    idling_minor_stops: "Idling and minor stops", reduced_speed: "Reduced speed",
    process_defects: "Process defects", reduced_yield: "Reduced yield", unclassified: "Unclassified (offline, no data)",
  };
  let chart = null;
  let reasons = [];

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  function fail(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  async function api(path, params, options) {
    const url = new URL(path, window.location.origin);
    Object.entries(params || {}).forEach(([k, v]) => url.searchParams.set(k, v));
    const response = await fetch(url, Object.assign({ credentials: "same-origin", headers: { Accept: "application/json" } }, options));
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.detail || response.status + " " + response.statusText);
    return body;
  }

  function bar(value) {
    const box = el("div", null, "bar " + (value === null ? "" : value >= 85 ? "good" : value >= 60 ? "warn" : "bad"));
    const fill = el("span");
    fill.style.width = Math.max(0, Math.min(100, value || 0)) + "%";
    box.append(fill, el("b", formatPercent(value)));
    return box;
  }

  function fillMachines(tbody, devices) {
    tbody.replaceChildren();
    devices.forEach((d) => {
      const tr = el("tr");
      tr.appendChild(el("th", d.uid + " · " + d.name));
      tr.firstChild.scope = "row";
      ["oee", "availability", "performance", "quality"].forEach((k) => tr.appendChild(el("td")).appendChild(bar(d[k])));
      tr.appendChild(el("td", Math.round(d.data_gap_seconds / 60) + " min"));
      tbody.appendChild(tr);
    });
  }

  async function machines(start, tableId, totalId) {
    const body = await api("/api/v1/analytics/oee/", Object.assign({ start: start, per_device: "true", group_by: "day" }, target));
    fillMachines(document.querySelector("#" + tableId + " tbody"), body.devices);
    if (totalId) {
      const t = body.total;
      document.getElementById(totalId).textContent = "OEE " + formatPercent(t.oee) + " · A " + formatPercent(t.availability) +
        " · P " + formatPercent(t.performance) + " · Q " + formatPercent(t.quality);
    }
  }

  async function trend(groupBy, days) {
    const start = new Date(Date.now() - days * 86400e3).toISOString();
    const body = await api("/api/v1/analytics/oee/", Object.assign({ start: start, group_by: groupBy }, target));
    const xs = body.periods.map((p) => new Date(p.start).getTime() / 1000);
    const series = ["oee", "availability", "performance", "quality"].map((k) => body.periods.map((p) => p[k]));
    const box = document.getElementById("trend-chart");
    const opts = {
      width: Math.max(320, box.clientWidth - 16), height: 260, tzDate: chartDate,
      scales: { y: { range: [0, 110] } },
      axes: [{ stroke: "#9fb0c3", grid: { stroke: "#2a3644" }, values: TIME_TICKS }, { stroke: "#9fb0c3", grid: { stroke: "#2a3644" }, values: (u, v) => v.map((x) => x + " %") }],
      series: [{ value: chartTimeValue }, { label: "OEE", stroke: "#4cc2ff", width: 3 }, { label: "Availability", stroke: "#3ddc84" },
        { label: "Performance", stroke: "#ffcc33" }, { label: "Quality", stroke: "#b48cff" }],
    };
    if (chart) chart.destroy();
    chart = new uPlot(opts, [xs].concat(series), box);
  }

  async function pareto() {
    const start = new Date(Date.now() - 7 * 86400e3).toISOString();
    const body = await api("/api/v1/analytics/oee/", Object.assign({ start: start, group_by: "week" }, target));
    const rows = Object.entries(body.total.losses).filter(([, v]) => v.seconds > 0).sort((a, b) => b[1].seconds - a[1].seconds);
    const max = rows.length ? rows[0][1].seconds : 1;
    const tbody = document.querySelector("#pareto tbody");
    tbody.replaceChildren();
    rows.forEach(([key, v]) => {
      const tr = el("tr");
      tr.append(el("td", LOSSES[key] || key), el("td", (v.seconds / 3600).toFixed(2)), el("td", v.points === null ? "–" : v.points.toFixed(2)));
      const barCell = el("td");
      const b = el("div", null, "pareto-bar");
      b.style.width = (100 * v.seconds / max) + "%";
      barCell.appendChild(b);
      tr.appendChild(barCell);
      tbody.appendChild(tr);
    });
  }

  async function classify(device, start, reason) {
    await api("/api/v1/analytics/stops/", {}, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf, Accept: "application/json" },
      body: JSON.stringify({ device: Number(device), start: start, reason: Number(reason) }),
    });
  }

  async function stops() {
    const select = document.getElementById("stop-machine");
    const tbody = document.querySelector("#stops tbody");
    tbody.replaceChildren();
    if (!select.value) return;
    const list = await api("/api/v1/analytics/stops/", { device: select.value });
    list.reverse().forEach((s) => {
      const tr = el("tr");
      tr.append(el("td", formatDateTime(s.start)), el("td", s.state), el("td", (s.planned_seconds / 60).toFixed(1)), el("td", LOSSES[s.category] || s.category));
      const cell = el("td");
      if (root.dataset.canClassify === "1" && reasons.length) {
        const choose = el("select");
        choose.setAttribute("aria-label", "Reason for the stop at " + s.start);
        choose.appendChild(el("option", "—"));
        reasons.forEach((r) => {
          const o = el("option", r.code + " · " + r.name);
          o.value = r.id;
          o.selected = r.id === s.reason;
          choose.appendChild(o);
        });
        choose.addEventListener("change", () => classify(s.device, s.start, choose.value).then(stops, (e) => fail(e.message)));
        cell.appendChild(choose);
      } else {
        cell.textContent = (reasons.find((r) => r.id === s.reason) || {}).name || "–";
      }
      tr.appendChild(cell);
      tbody.appendChild(tr);
    });
  }

  async function load() {
    const jobs = [machines(root.dataset.todayStart, "today-table", "today-total"), trend("day", 30), pareto()];
    if (root.dataset.shiftStart) jobs.push(machines(root.dataset.shiftStart, "shift-table"));
    reasons = (await api("/api/v1/reason-codes/", { plant: plant, page_size: 500 })).results || [];
    jobs.push(stops());
    await Promise.all(jobs);
  }

  document.querySelectorAll("[data-trend]").forEach((button) => button.addEventListener("click", () => {
    document.querySelectorAll("[data-trend]").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
    trend(button.dataset.trend, Number(button.dataset.days)).catch((e) => fail(e.message));
  }));
  document.getElementById("stop-machine").addEventListener("change", () => stops().catch((e) => fail(e.message)));
  load().catch((e) => fail(e.message));
  setInterval(() => load().catch((e) => fail(e.message)), 60000);
})();
