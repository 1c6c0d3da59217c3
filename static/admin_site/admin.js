// Django admin, site additions (templates/admin/base_site.html): an inline table wider than a
// tablet or phone scrolls sideways inside its group; keyboard users must be able to reach and
// scroll it (WCAG 2.1.1), so each inline group is a named, focusable region.
document.addEventListener("DOMContentLoaded", () => {
  for (const group of document.querySelectorAll(".inline-group")) {
    const heading = group.querySelector("h2");
    group.tabIndex = 0;
    group.setAttribute("role", "region");
    if (heading) group.setAttribute("aria-label", heading.textContent.trim());
  }
});
