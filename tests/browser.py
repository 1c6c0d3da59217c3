"""Real Chromium (Playwright) for the browser tests of every app: launch, pages, log-in, live wait.

Loaded as a pytest plugin by the root ``conftest.py``, so its fixtures (``chromium_browser``,
``tab``) are available everywhere; Playwright is imported only when a browser test runs. A browser
test module starts with ``playwright_sync = require_chromium()``: it skips the module when
Playwright or Chromium is missing. A failed test using ``tab`` leaves a screenshot in
``test-artifacts/``. Every page of ``page_at``/``tab`` fails its test on a JavaScript error or a
Content-Security-Policy violation (``watch_csp``; a test that provokes one on purpose reads and
clears ``csp_violations(page)``).
"""

import contextlib
import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
EXPECT_TIMEOUT_MS = 10_000
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


def require_chromium():
    """Playwright's sync API; skips the calling module when Playwright or Chromium is missing."""
    playwright_sync = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
    # How long an `expect(...)` waits for what it expects: a bound for a loaded machine, not a speed goal.
    playwright_sync.expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    return playwright_sync


@contextlib.contextmanager
def chromium():
    """A headless Chromium, closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def chromium_browser():
    """One Chromium for a module's tests (each gets a fresh context from ``page_at``/``tab``)."""
    with chromium() as browser:
        yield browser


# Before any page script of every document: each CSP violation (enforced or report-only) goes to
# Python as it happens, through the binding that ``watch_csp`` exposes.
CSP_LISTENER = """document.addEventListener("securitypolicyviolation", (e) => window.__cspViolation(
  `${e.disposition === "report" ? "(report-only) " : ""}${e.effectiveDirective} blocked ${e.blockedURI || "inline"}`
  + ` at ${e.sourceFile || e.documentURI}:${e.lineNumber}${e.sample ? ` «${e.sample}»` : ""}`));"""
CSP_CONSOLE = "Content Security Policy"  # Chrome's console error for a violation the listener cannot see (a worker's)
_csp_lists: dict = {}


def watch_csp(context) -> list[str]:
    """The Content-Security-Policy violations on ``context``'s pages, filled as they happen: the
    ``securitypolicyviolation`` events of every document and Chrome's console errors about the policy."""
    violations = []
    context.expose_binding("__cspViolation", lambda _source, text: violations.append(text))
    context.add_init_script(CSP_LISTENER)
    context.on(
        "console",
        lambda message: (
            message.type == "error" and CSP_CONSOLE in message.text and violations.append(f"console: {message.text}")
        ),
    )
    _csp_lists[context] = violations
    return violations


def csp_violations(page) -> list[str]:
    """The violations recorded so far in ``page``'s context (``page_at``/``tab``); clear it to expect none after."""
    return _csp_lists[page.context]


def flush_csp_reports(context):
    """Let each open page deliver the violation events it has queued (they fire as tasks, after the
    blocked action): one round trip through the page's event loop."""
    for page in context.pages:
        with contextlib.suppress(Exception):  # a page that is closing or crashed has nothing to deliver
            page.evaluate("() => new Promise((resolve) => setTimeout(resolve))")


@contextlib.contextmanager
def page_at(browser, width: int, height: int, **context_options):
    """A page in a fresh browser context (fresh cookies; ``context_options``: Playwright's, e.g.
    ``timezone_id``) with a ``width`` × ``height`` viewport; no JavaScript error and no
    Content-Security-Policy violation may happen on it."""
    context = browser.new_context(viewport={"width": width, "height": height}, **context_options)
    violations = watch_csp(context)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
        flush_csp_reports(context)
    finally:
        context.close()
        _csp_lists.pop(context, None)
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert not violations, "Content-Security-Policy violations:\n  " + "\n  ".join(violations)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item (``item.rep_call``), for the screenshot on failure."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def tab(chromium_browser, request):
    """A 1024 × 768 page; screenshotted to ``test-artifacts/<test>.png`` when the test fails."""
    with page_at(chromium_browser, 1024, 768) as page:
        yield page
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)


def log_in(page, server, username: str, password: str):
    """Log in through ``server``'s login form (a Daphne or pytest-django's ``live_server``), as a person does."""
    page.goto(f"{server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def wait_live(page, syncs: int = 1):
    """Wait until the page's live stream has synced ``syncs`` times and shows it is live."""
    from playwright.sync_api import expect

    # A function, not an expression string: Playwright evaluates a string with eval(), which the CSP refuses.
    synced = f"() => window.__live && window.__live.syncs >= {syncs} && window.__live.ready"
    page.wait_for_function(synced, timeout=10000)
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
