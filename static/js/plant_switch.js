// The plant bar (templates/plant_base.html): choosing a plant opens the same page of that plant
// (each option carries its URL), and on pages with a live stream the plant admins' "Approvals"
// badge follows the number of devices waiting ("provisioning" events, re-emitted by live.js).
(function () {
  "use strict";
  const select = document.getElementById("plant-select");
  select?.addEventListener("change", () => {
    location.href = select.selectedOptions[0].dataset.url;
  });
  document.addEventListener("live:event", (event) => {
    const count = event.detail?.kind === "provisioning" ? Number(event.detail.pending) : NaN;
    if (!Number.isInteger(count)) return;
    for (const badge of document.querySelectorAll('[data-role="approvals-badge"]')) {
      badge.firstChild.textContent = String(count);
      badge.hidden = count === 0;
    }
  });
})();
