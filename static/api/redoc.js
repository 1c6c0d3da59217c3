// ReDoc on /api/docs/ (templates/api/redoc.html), with nothing fetched from other hosts.
(function () {
  "use strict";
  // ReDoc's side menu always draws the Redocly logo from cdn.redoc.ly (no option turns it off). An
  // image of another host gets an empty source instead: it fails at once, without a request, and
  // ReDoc then leaves the logo out (its own error handler) and keeps the "API docs by Redocly" text.
  const sameOrigin = (value) => new URL(String(value), location.href).origin === location.origin;
  const image = HTMLImageElement.prototype;
  const src = Object.getOwnPropertyDescriptor(image, "src");
  Object.defineProperty(image, "src", {
    ...src,
    set(value) {
      src.set.call(this, sameOrigin(value) ? value : "");
    },
  });
  // drf-spectacular's template has no lang on <html>: screen readers need it to pick the voice.
  document.documentElement.lang = "en";
  const container = document.getElementById("redoc-container");
  // ReDoc's <style> elements carry this script's nonce, the only inline style the CSP allows.
  const settings = { ...JSON.parse(container.dataset.settings), nonce: document.currentScript.nonce };
  Redoc.init(container.dataset.schemaUrl, settings, container);
})();
