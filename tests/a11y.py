"""Accessibility and health checks of a page in real Chromium, for the browser tests.

``watch(context)`` records, on every page of a Playwright browser context, JavaScript errors,
console errors and Content-Security-Policy violations (``tests.browser.watch_csp``, as every browser
test), and the uPlot charts the page draws.
``check(page)`` then runs axe-core (from npm: ``node_modules/axe-core``, a devDependency never
served to users) with the WCAG 2.0/2.1 A and AA rules, checks the contrast of the uPlot charts'
canvas (axe cannot see inside a canvas) and that keyboard focus is visible, and returns the
problems; ``problems(...)`` turns them into a failure message that says where to look: rule,
impact, target selectors and, for contrast, the colours and ratios.
"""

import contextlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from tests.browser import flush_csp_reports, watch_csp

AXE = Path(__file__).resolve().parents[1] / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = ("serious", "critical")
NODES_SHOWN = 6

CHECKS = Path(__file__).with_suffix(".js")  # the checks axe-core cannot make (charts, overlaid text, focus)
MARKER = "// ---- after axe ----"


@cache
def scripts() -> tuple[str, str]:
    """(init script, what runs after the page settled: axe-core and our checks)."""
    if not AXE.exists():
        raise AssertionError(f"{AXE} is missing: run `make assets` (npm ci installs axe-core, a devDependency).")
    init, after = CHECKS.read_text().split(MARKER)
    return init, AXE.read_text() + ";\n" + after + "\n0;"  # 0: evaluate() returns nothing to serialise


@dataclass
class Watched:
    """What happened on the pages of one context since the last ``clear()``."""

    page_errors: list = field(default_factory=list)
    console_errors: list = field(default_factory=list)
    csp_violations: list = field(default_factory=list)

    def clear(self):
        self.page_errors.clear()
        self.console_errors.clear()
        self.csp_violations.clear()


def watch(context) -> Watched:
    """Record page errors, console errors, CSP violations and uPlot charts on ``context``'s pages."""
    watched = Watched(csp_violations=watch_csp(context))
    context.add_init_script(scripts()[0])

    def on_page(page):
        page.on("pageerror", lambda error: watched.page_errors.append(str(error)))
        page.on(
            "console",
            lambda message: (
                message.type == "error"
                and watched.console_errors.append((message.text, message.location.get("url", "")))
            ),
        )

    context.on("page", on_page)
    return watched


def check(page, watched: Watched, *, focus_stops: int = 0) -> dict:
    """axe-core's serious and critical WCAG A/AA violations on ``page``, the uPlot charts' contrast
    failures and the focus stops without a visible focus (``focus_stops`` Tab presses; 0: none).
    The page's CSP violations have reached ``watched`` when it returns."""
    page.evaluate(scripts()[1])  # through the DevTools protocol: no CSP applies, nothing is served
    options = {"runOnly": {"type": "tag", "values": AXE_TAGS}, "resultTypes": ["violations", "incomplete"]}
    flush_csp_reports(page.context)
    with _axe_styles_ignored(watched):
        result = page.evaluate("(options) => axe.run(document, options)", options)
        flush_csp_reports(page.context)
    violations = [v for v in result["violations"] if v["impact"] in BLOCKING]
    undecided = [node for v in result["incomplete"] if v["id"] == "color-contrast" for node in v["nodes"]]
    short = []
    for node in undecided:
        data = next((c.get("data") for c in node.get("any", []) if c.get("data")), None) or {}
        needed = float(str(data.get("expectedContrastRatio", "0")).rstrip(":1") or 0)
        if data.get("contrastRatio") and float(data["contrastRatio"]) < needed:
            short.append(node)  # decided after all (a one-digit count: axe only asks for a review)
    if short:
        violations.append({"id": "color-contrast", "impact": "serious", "help": "Short text contrast", "nodes": short})
    single = [node["target"][0] for node in undecided if isinstance(node["target"][0], str) and node not in short]
    unfocused = []
    if focus_stops:
        page.locator("body").focus()
        for _ in range(focus_stops):
            page.keyboard.press("Tab")
            if (missing := page.evaluate("__a11y.unfocused()")) is not None and missing not in unfocused:
                unfocused.append(missing)
    flush_csp_reports(page.context)
    return {
        "axe": violations,
        "charts": page.evaluate("__a11y.charts()"),
        "overlaid": page.evaluate("(selectors) => __a11y.overlaid(selectors)", single),
        "unfocused": unfocused,
    }


@contextlib.contextmanager
def _axe_styles_ignored(watched: Watched):
    """Drop the inline-style violations recorded inside the block: axe-core copies the page's
    @import-ed stylesheets (the admin's forms.css imports widgets.css) into <style> elements of its
    own to read their rules, which the site's CSP refuses; they are the test's, not the page's."""
    csp_before, console_before = len(watched.csp_violations), len(watched.console_errors)
    yield
    console = "Applying inline style"
    recorded = watched.csp_violations[csp_before:]
    watched.csp_violations[csp_before:] = [
        text for text in recorded if not text.startswith(("style-src-elem blocked inline", f"console: {console}"))
    ]
    logged = watched.console_errors[console_before:]
    watched.console_errors[console_before:] = [(text, url) for text, url in logged if not text.startswith(console)]


def _node_line(rule_id: str, node: dict) -> str:
    target = " ".join(" > ".join(t) if isinstance(t, list) else t for t in node["target"])
    line = f"      {target}"
    if rule_id == "color-contrast":
        data = next((c.get("data") for c in node.get("any", []) if c.get("data")), None) or {}
        if "contrastRatio" in data:
            line += (
                f"  {data['contrastRatio']}:1, needs {data.get('expectedContrastRatio')} "
                f"({data.get('fgColor')} on {data.get('bgColor')}, {data.get('fontSize')} {data.get('fontWeight')})"
            )
    elif node.get("failureSummary"):
        line += "  " + " ".join(node["failureSummary"].split())[:200]
    return line


def problems(found: dict, watched: Watched) -> list[str]:
    """The problems of one visit as lines of text (empty: clean)."""
    lines = [f"  JavaScript error: {error}" for error in watched.page_errors]
    lines += [f"  console error: {text} ({url})" for text, url in watched.console_errors]
    lines += [f"  CSP violation: {violation}" for violation in watched.csp_violations]
    for violation in found["axe"]:
        lines.append(f"  axe {violation['id']} ({violation['impact']}): {violation['help']}")
        lines += [_node_line(violation["id"], node) for node in violation["nodes"][:NODES_SHOWN]]
        if len(violation["nodes"]) > NODES_SHOWN:
            lines.append(f"      … and {len(violation['nodes']) - NODES_SHOWN} more")
    for chart in found["charts"]:
        lines.append(
            f"  chart contrast ({chart['kind']}): {chart['target']} {chart['label']}: "
            f"{chart['ratio']}:1, needs {chart['needed']} ({chart['fg']} on {chart['bg']})"
        )
    lines += [
        f"  text over several backgrounds: {item['target']} «{item['text']}»: "
        f"{item['ratio']}:1, needs {item['needed']} ({item['fg']} on {item['bg']})"
        for item in found["overlaid"][:NODES_SHOWN]
    ]
    if len(found["overlaid"]) > NODES_SHOWN:
        lines.append(f"      … and {len(found['overlaid']) - NODES_SHOWN} more")
    lines += [f"  focus not visible on {what}" for what in found["unfocused"]]
    return lines
