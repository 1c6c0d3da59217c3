"""The OEE page in real Chromium (Playwright) against pytest-django's live server: figures, trend, Pareto,
an operator classifying a stop from the page, and the plant navigation by keyboard."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from accounts.roles import Role
from analytics.models import StopReason
from analytics.services import reason_code_create
from analytics.tests.factories import counts, make_shift, store
from devices.tests.factories import PASSWORD, make_device, make_line, make_user
from tests.browser import chromium, log_in, page_at, require_chromium

playwright_sync = require_chromium()
if not (Path(__file__).resolve().parents[2] / "static/vendor/uPlot.iife.min.js").exists():
    pytest.skip("static/vendor/ is missing: run `make assets`", allow_module_level=True)


@pytest.fixture
def oee_tab(live_server, transactional_db, monkeypatch, seeded):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    # A browser per test, started after `seeded` (not the module-wide `chromium_browser`).
    with chromium() as browser, page_at(browser, 1200, 900) as tab:
        yield tab


@pytest.fixture
def seeded(transactional_db, plant_a):
    """Seeded before the browser starts: ingest publishes from sync code, which Playwright's loop forbids."""
    plant_a.time_zone = "UTC"
    plant_a.save()
    make_shift(plant_a, "All day", "00:00", "00:00")  # a 24-hour shift: planned all the time
    device = make_device(make_line(plant_a, "Stamping"), "press-ui", ideal_cycle_time=Decimal("1"))
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=3)
    store(
        device,
        [
            (start, "running", counts(0, 0)),
            (start + timedelta(hours=1), "down", counts(3000, 2900)),
            (start + timedelta(hours=1, minutes=20), "running", None),
            (now - timedelta(seconds=1), None, counts(7000, 6800)),
        ],
    )
    reason_code_create(plant=plant_a, code="jam", name="Jam in die", category="equipment_failure")
    make_user("op", plant=plant_a, role=Role.OPERATOR)
    return device, start


def test_operator_sees_oee_and_classifies_a_stop(live_server, oee_tab, seeded, plant_a):
    device, start = seeded
    page = oee_tab
    log_in(page, live_server, "op", PASSWORD)
    page.goto(f"{live_server.url}/analytics/oee/?plant={plant_a.pk}")
    expect = playwright_sync.expect
    expect(page.locator("#today-table tbody tr")).to_have_count(1)
    expect(page.locator("#today-table tbody tr").first).to_contain_text("press-ui")
    expect(page.locator("#shift-table tbody tr")).to_have_count(1)
    expect(page.locator("#trend-chart canvas")).to_have_count(1)
    # 24-hour shifts over 7 days with 3 hours of data: the gaps lead the Pareto, the stop follows.
    expect(page.locator("#pareto tbody tr").first).to_contain_text("Unclassified")
    expect(page.locator("#pareto tbody tr", has_text="Equipment failure")).to_have_count(1)
    choose = page.locator("#stops tbody select")
    expect(choose).to_have_count(1)
    with page.expect_response(lambda r: "/api/v1/analytics/stops/" in r.url and r.request.method == "POST") as posted:
        choose.select_option(label="jam · Jam in die")
    assert posted.value.status == 201
    expect(page.locator("#stops tbody select")).to_have_value(str(reason_code_id(plant_a)))
    assert StopReason.objects.filter(device=device, start=start + timedelta(hours=1)).exists()


def reason_code_id(plant) -> int:
    return plant.reason_codes.get(code="jam").pk


def test_plant_navigation_is_reachable_by_keyboard_with_the_oee_page_current(live_server, oee_tab, seeded, plant_a):
    page = oee_tab
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("op")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live_server.url}/analytics/oee/?plant={plant_a.pk}")
    # Each page's API calls must end before the next page or the test's end (the database goes away).
    page.wait_for_load_state("networkidle")
    page.locator("#plant-select").focus()
    visited = []
    for _ in range(5):
        page.keyboard.press("Tab")
        visited.append(
            page.evaluate(
                """() => {
                    const el = document.activeElement;
                    return [el.textContent.trim(), el.getAttribute("aria-current"), getComputedStyle(el).outlineStyle];
                }"""
            )
        )
    assert [label for label, _current, _outline in visited] == ["Overview", "Alarms", "Alarm KPIs", "OEE", "Rollouts"]
    assert [label for label, current, _outline in visited if current == "page"] == ["OEE"]
    assert {outline for _label, _current, outline in visited} == {"solid"}, "focus must be visible"
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # back on "Alarm KPIs", which opens by keyboard alone
    playwright_sync.expect(page.get_by_role("heading", level=1)).to_contain_text("alarm performance")
    playwright_sync.expect(page.get_by_role("link", name="Alarm KPIs")).to_have_attribute("aria-current", "page")
    assert page.url.endswith(f"/alarms/kpis/?plant={plant_a.pk}")
    page.wait_for_load_state("networkidle")
