// Checks axe-core cannot make, for tests/a11y.py. Two parts, split at the marker line below:
// the first runs before any page script (Playwright's init script), the second after axe-core.

// Before any page script: fetches in flight in window.__pending (the page has settled when none
// is left) and every uPlot chart into window.__uplots (uPlot is a global `var` of its IIFE bundle:
// the setter wraps the constructor). CSP violations: tests/browser.py (watch_csp).
(() => {
  window.__pending = 0;
  const realFetch = window.fetch;
  window.fetch = function (...args) {
    window.__pending++;
    return realFetch.apply(this, args).finally(() => { window.__pending--; });
  };
  window.__uplots = [];
  let real;
  Object.defineProperty(window, "uPlot", {
    configurable: true,
    get() { return real; },
    set(value) {
      real = typeof value !== "function" ? value : new Proxy(value, {
        construct(target, args) {
          const chart = Reflect.construct(target, args);
          window.__uplots.push(chart);
          return chart;
        },
      });
    },
  });
})();
// ---- after axe ----
window.__a11y = (() => {
  const probe = document.createElement("canvas").getContext("2d");

  // Any CSS colour as [r, g, b, alpha] (the canvas normalises it to #rrggbb or rgba(...)).
  function rgba(colour) {
    probe.fillStyle = "#010203";
    probe.fillStyle = colour;
    const s = probe.fillStyle;
    if (s[0] === "#") return [1, 3, 5].map((i) => parseInt(s.slice(i, i + 2), 16)).concat(1);
    const m = s.match(/[\d.]+/g).map(Number);
    return [m[0], m[1], m[2], m.length > 3 ? m[3] : 1];
  }
  function over(top, bottom) {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + bottom[i] * (1 - a)).concat(1);
  }
  function flatten(layers) { // top first
    return layers.reduceRight((below, layer) => over(layer, below), [255, 255, 255, 1]);
  }
  function luminance(c) {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  }
  function ratio(a, b) {
    const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
    return Math.round(((x + 0.05) / (y + 0.05)) * 100) / 100;
  }
  function hex(c) {
    return "#" + c.slice(0, 3).map((v) => Math.round(v).toString(16).padStart(2, "0")).join("");
  }
  function backgroundOf(node) { // the element's own background, blended with its ancestors'
    const layers = [];
    for (let el = node; el; el = el.parentElement) {
      const c = rgba(getComputedStyle(el).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    return flatten(layers);
  }
  function backgroundAt(el, x, y) { // what is painted under point (x, y) of el's text
    const layers = [];
    for (const node of document.elementsFromPoint(x, y)) {
      if (node !== el && el.contains(node)) continue; // the text's own children; its own background counts
      const c = rgba(getComputedStyle(node).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    return flatten(layers);
  }

  // Each drawn uPlot chart's axis labels (text: 4.5:1) and series lines (graphical objects: 3:1,
  // WCAG 1.4.11) against the chart's background: axe cannot see inside a canvas.
  function charts() {
    const found = [];
    window.__uplots.filter((u) => u.root && u.root.isConnected).forEach((u) => {
      const bg = backgroundOf(u.over || u.root);
      const holder = u.root.closest("[id]");
      const target = (holder ? "#" + holder.id + " " : "") + ".uplot";
      const check = (kind, colour, needed, label) => {
        if (typeof colour !== "string" || !colour) return;
        const fg = over(rgba(colour), bg);
        const r = ratio(fg, bg);
        if (r < needed) found.push({ kind, label, target, fg: hex(fg), bg: hex(bg), ratio: r, needed });
      };
      u.axes.forEach((axis, i) => {
        if (axis.show === false) return;
        const stroke = typeof axis.stroke === "function" ? axis.stroke(u, i) : axis.stroke;
        check("axis", stroke, 4.5, "axis " + i + (axis.label ? " (" + axis.label + ")" : ""));
      });
      u.series.forEach((s, i) => {
        if (i === 0 || s.show === false) return;
        const stroke = typeof s.stroke === "function" ? s.stroke(u, i) : s.stroke;
        check("series", stroke, 3, "series " + (s.label || i));
      });
    });
    return found;
  }

  // Text axe could not decide on because it sits over several backgrounds (a label over a bar's
  // fill): the worst contrast of sample points along its glyph boxes against what is under each.
  function overlaid(selectors) {
    const found = [];
    selectors.forEach((selector) => {
      const el = document.querySelector(selector);
      if (!el || !el.textContent.trim()) return;
      const style = getComputedStyle(el);
      const size = parseFloat(style.fontSize);
      const needed = size >= 24 || (Number(style.fontWeight) >= 700 && size >= 18.66) ? 3 : 4.5;
      const range = document.createRange();
      range.selectNodeContents(el);
      let worst = null;
      for (const rect of range.getClientRects()) {
        for (let i = 1; i <= 5; i++) {
          const x = rect.left + (rect.width * i) / 6;
          const y = rect.top + rect.height / 2;
          if (x < 0 || y < 0 || x >= innerWidth || y >= innerHeight) continue;
          const bg = backgroundAt(el, x, y);
          const fg = over(rgba(style.color), bg);
          const r = ratio(fg, bg);
          if (!worst || r < worst.ratio) worst = { ratio: r, fg: hex(fg), bg: hex(bg) };
        }
      }
      if (worst && worst.ratio < needed) {
        found.push({ target: selector, text: el.textContent.trim().slice(0, 30), needed, ...worst });
      }
    });
    return found;
  }

  // The focused element when it shows no focus (no outline, no box-shadow), else null.
  function unfocused() {
    const active = document.activeElement;
    if (!active || active === document.body || active === document.documentElement) return null;
    const style = getComputedStyle(active);
    const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
    if (outline || style.boxShadow !== "none") return null;
    const classes = String(active.className || "").trim().split(/\s+/).filter(Boolean);
    const name = active.id ? "#" + active.id : [active.tagName.toLowerCase(), ...classes].join(".");
    const label = active.innerText || active.value || active.getAttribute("aria-label") || "";
    return `${name} «${label.trim().replace(/\s+/g, " ").slice(0, 40)}»`;
  }

  return { charts, overlaid, unfocused };
})();
