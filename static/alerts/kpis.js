// Alarm KPI page: loads GET /api/v1/alarms/kpis/ and draws the figures, a uPlot bar chart and tables.
// The chart's time axis is in the plant's zone (static/js/live.js).
import { TIME_TICKS, chartDate, chartTimeValue } from "../js/live.js";

(function () {
  "use strict";
  const form = document.getElementById("kpi-form");
  if (!form) return;
  const figures = document.getElementById("kpi-figures");
  const errorBox = document.getElementById("kpi-error");
  const chartBox = document.getElementById("kpi-chart");
  let chart = null;

  function text(tag, value) {
    const el = document.createElement(tag);
    el.textContent = value;
    return el;
  }

  function row(tbody, cells) {
    const tr = document.createElement("tr");
    cells.forEach((c) => tr.appendChild(text("td", c)));
    tbody.appendChild(tr);
  }

  function showFigures(k) {
    const mtta = k.mean_time_to_acknowledge_seconds;
    const items = [
      ["Alarms", k.total_alarms],
      ["Per 10 min (average)", k.alarms_per_10min_avg + " (EEMUA: ≤ 1 is very likely acceptable)"],
      ["Per 10 min (peak)", k.alarms_per_10min_peak],
      ["Time in flood", k.flood_percent + " % of windows (" + k.flood_windows + ")"],
      ["Chattering alarms", k.chattering_alarms],
      ["Stale alarms (> 24 h)", k.stale_alarms],
      ["Mean time to acknowledge", mtta === null ? "–" : (mtta / 60).toFixed(1) + " min (" + k.acknowledged + " acknowledged)"],
    ];
    figures.replaceChildren();
    items.forEach(([label, value]) => {
      figures.appendChild(text("dt", label));
      figures.appendChild(text("dd", String(value)));
    });
  }

  function showTables(k) {
    const prio = document.querySelector("#kpi-priorities tbody");
    prio.replaceChildren();
    Object.entries(k.priority_distribution).forEach(([severity, count]) => {
      const share = k.total_alarms ? ((100 * count) / k.total_alarms).toFixed(1) + " %" : "–";
      row(prio, [severity, String(count), share]);
    });
    const actors = document.querySelector("#kpi-actors tbody");
    actors.replaceChildren();
    k.top_bad_actors.forEach((a) => row(actors, [a.rule, a.device, String(a.count)]));
    if (!k.top_bad_actors.length) row(actors, ["No alarms in this period", "", ""]);
  }

  function showChart(k) {
    const xs = k.series.map((w) => Date.parse(w.start) / 1000);
    const ys = k.series.map((w) => w.count);
    const flood = k.series.map(() => 10);
    const width = Math.max(320, chartBox.clientWidth || 800);
    // The theme's colours (css/factory.css): uPlot draws on a canvas, black axes unless told.
    const css = getComputedStyle(document.documentElement);
    const colour = (name) => css.getPropertyValue(name).trim();
    const axis = { stroke: colour("--muted"), grid: { stroke: colour("--line") }, ticks: { stroke: colour("--line") } };
    const options = {
      width: width,
      height: 260,
      tzDate: chartDate,
      series: [
        { value: chartTimeValue },
        { label: "Alarms / 10 min", stroke: colour("--bad"), fill: colour("--bad-fill"), paths: uPlot.paths.bars({ size: [0.9, 40] }) },
        { label: "Flood threshold", stroke: colour("--warn"), dash: [6, 4], points: { show: false } },
      ],
      axes: [Object.assign({ values: TIME_TICKS }, axis), Object.assign({ label: "alarms" }, axis)],
    };
    if (chart) chart.destroy();
    chart = new uPlot(options, [xs, ys, flood], chartBox);
  }

  async function load(event) {
    if (event) event.preventDefault();
    const data = new FormData(form);
    const end = new Date();
    const start = new Date(end.getTime() - Number(data.get("hours")) * 3600 * 1000);
    const query = new URLSearchParams({ plant: data.get("plant"), start: start.toISOString(), end: end.toISOString() });
    errorBox.hidden = true;
    try {
      const response = await fetch("/api/v1/alarms/kpis/?" + query, { credentials: "same-origin", headers: { Accept: "application/json" } });
      const body = await response.json();
      if (!response.ok) throw new Error(body.detail || response.statusText);
      showFigures(body);
      showTables(body);
      showChart(body);
    } catch (err) {
      errorBox.textContent = "Could not load the KPIs: " + err.message;
      errorBox.hidden = false;
    }
  }

  form.addEventListener("submit", load);
  load();
})();
