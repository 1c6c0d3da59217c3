"""A Berlin plant in real Chromium, with the browser itself in New York: every time shows in Berlin
time and the page says so; values and thresholds show with their unit and the rule's precision
(issue 13 items 5 and 7)."""

import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.browser import log_in, page_at, require_chromium, wait_live
from tests.servers import post_reading, seeded_stack

playwright_sync = require_chromium()
expect = playwright_sync.expect
BERLIN = ZoneInfo("Europe/Berlin")

SEED = """
import json
from datetime import time
from accounts.roles import Role
from alerts.tests.factories import make_rule
from analytics.models import Shift
from devices.tests.factories import PASSWORD, make_device, make_line, make_plant, make_token, make_user
plant = make_plant("Berlin works", time_zone="Europe/Berlin")
press = make_device(make_line(plant, "Press line"), "press-01")
make_rule(plant, name="Vibration high", metric="vibration", threshold=0.06, clear_threshold=0.045,
          action="Check the bearing.")
Shift.objects.create(plant=plant, name="Day and night", start=time(6), end=time(6), weekdays=list(range(7)))
make_user("operator", plant=plant, role=Role.OPERATOR)
print(json.dumps({"password": PASSWORD, "plant": plant.pk, "token": make_token(press)[1]}))
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with seeded_stack(tmp_path_factory.mktemp("formats-e2e"), SEED) as (server, seeded):
        yield server, seeded


@pytest.fixture
def new_york_tab(chromium_browser):
    """A page whose browser runs in New York: anything shown in the browser's zone would be 6 h off."""
    errors = []

    def on_console(message):
        if message.type == "error":
            errors.append(f"{message.text} {message.location}")

    with page_at(chromium_browser, 1024, 768, timezone_id="America/New_York") as page:  # no JS error, no CSP violation
        page.on("console", on_console)
        yield page
    assert not errors, f"Console errors on the page: {errors}"


def berlin(iso: str, pattern: str = "%Y-%m-%d %H:%M:%S") -> str:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(BERLIN).strftime(pattern)


def test_the_alarm_console_shows_values_thresholds_and_times_as_the_berlin_plant_reads_them(stack, new_york_tab):
    server, seeded, page = *stack, new_york_tab
    log_in(page, server, "operator", seeded["password"])
    page.goto(f"{server.url}/plants/{seeded['plant']}/alarms/")
    wait_live(page)
    expect(page.locator("#plant-tz")).to_have_text("Times: Europe/Berlin")

    post_reading(server, {"token": seeded["token"]}, {"vibration": 0.0634})

    row = page.locator("#alarm-rows tr[data-alarm]")
    expect(row).to_have_count(1)
    expect(row.locator(".alarm-reading")).to_have_text("Value 0.063 mm/s, limit > 0.06 mm/s")  # not 0.00, not 0.1
    expect(row.locator(".alarm-message")).to_have_text("press-01: Vibration high (value 0.063 mm/s)")
    raised_at = row.locator(".age").get_attribute("data-since")
    expect(row.locator(".age")).to_have_attribute("title", f"Raised {berlin(raised_at)}")

    row.get_by_role("button", name="History").click()
    history = page.locator("tr.alarm-history li").first
    expect(history).to_have_text(re.compile(rf"^{re.escape(berlin(raised_at))}: raised at 0\.063 mm/s"))


def test_the_oee_page_shows_the_current_shift_in_berlin_time(stack, new_york_tab):
    server, seeded, page = *stack, new_york_tab
    log_in(page, server, "operator", seeded["password"])
    page.goto(f"{server.url}/analytics/oee/?plant={seeded['plant']}")
    expect(page.locator("#shift-h")).to_have_text("Current shift: Day and night since 06:00")  # 05:00 UTC in winter
    expect(page.locator("#plant-tz")).to_have_text("Times: Europe/Berlin")
    expect(page.locator("#today-table tbody tr")).to_have_count(1)  # the page's script ran as a module


def test_a_toast_carries_its_berlin_time(stack, new_york_tab):
    server, seeded, page = *stack, new_york_tab
    log_in(page, server, "operator", seeded["password"])
    page.goto(f"{server.url}/plants/{seeded['plant']}/rollouts/")
    wait_live(page)
    before = datetime.now(BERLIN).strftime("%H:%M")
    page.evaluate(
        """document.dispatchEvent(new CustomEvent("live:event", {detail: {kind: "notification",
        severity: "critical", title: "Channel failing", body: "Fix its settings.", alarm_id: null}}))"""
    )
    shown = page.locator("#toasts .toast-time")
    expect(shown).to_have_count(1)
    after = datetime.now(BERLIN).strftime("%H:%M")
    assert shown.text_content() in {before, after}  # a minute may turn meanwhile


def test_the_browser_writes_numbers_as_the_server_does(stack, new_york_tab):
    """static/js/live.js and devices/formats.py are twins: a value of a metric the page has no format
    for read "1234.5" live but "1,234.5" in the page's first paint and the e-mail (failed before)."""
    from devices.formats import format_value

    server, seeded, page = *stack, new_york_tab
    log_in(page, server, "operator", seeded["password"])
    page.goto(f"{server.url}/plants/{seeded['plant']}/alarms/")
    cases = [
        (value, meta)
        for value in (1234.5, 1234567, 98765.4321, 0.125, -0.0004, 61.43, 7)
        for meta in (None, {"unit": "kW", "precision": 2}, {"unit": "", "precision": None})
    ]
    shown = page.evaluate(
        """async (cases) => {
            const src = document.querySelector('script[src*="toasts"]').src;
            const { formatValue } = await import(new URL("live.js", src));
            return cases.map(([value, meta]) => formatValue(value, meta));
        }""",
        cases,
    )
    assert shown == [format_value(value, meta) for value, meta in cases]
