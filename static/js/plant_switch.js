// The plant bar's switcher (templates/plant_base.html): choosing a plant opens the same page of that
// plant (each option carries its URL).
(function () {
  "use strict";
  const select = document.getElementById("plant-select");
  select?.addEventListener("change", () => {
    location.href = select.selectedOptions[0].dataset.url;
  });
})();
