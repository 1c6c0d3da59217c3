"""The alarm console in real Chromium against a real Daphne: what an operator sees and does there.

One database, one Daphne and one browser for the module; each test writes to devices of its own
(``own_device``). Plant A has a warning rule (vibration > 5) and a critical one (temperature > 90).
"""

from datetime import UTC, datetime

import httpx
import pytest

from tests.browser import log_in, page_at, require_chromium, wait_live
from tests.servers import seeded_stack

playwright_sync = require_chromium()
expect = playwright_sync.expect

SEED = """
import contextlib, io, json
from alerts.tests.factories import make_rule
from devices.models import Plant
from tests.e2e_seed import seed
with contextlib.redirect_stdout(io.StringIO()):
    data = seed(devices=4, sensor=False)
make_rule(Plant.objects.get(pk=data["plants"]["A"]), name="Overheating", metric="temperature", threshold=90.0,
          severity="critical", action="Stop the press and call maintenance.")
print(json.dumps(data))
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with seeded_stack(tmp_path_factory.mktemp("console-e2e"), SEED) as (server, seeded):
        yield server, seeded


def post(server, device: dict, values: dict, state: str = "running"):
    body = {"ts": datetime.now(UTC).isoformat().replace("+00:00", "Z"), "values": values, "state": state}
    response = httpx.post(
        f"{server.url}/api/v1/telemetry/", json=body, headers={"Authorization": f"Device {device['token']}"}
    )
    assert response.status_code == 202, response.text


def open_console(page, server, seeded):
    log_in(page, server, "operator", seeded["password"])
    page.goto(f"{server.url}/plants/{seeded['plants']['A']}/alarms/")
    wait_live(page)


def test_critical_above_warning_acknowledge_by_keyboard_shelve_with_reason_and_unshelve(stack, tab, own_device):
    server, seeded, page = *stack, tab
    warm, hot = own_device("press-001"), own_device("press-002")
    open_console(page, server, seeded)

    post(server, warm, {"vibration": 9.5})  # warning, raised first
    post(server, hot, {"temperature": 97.0}, state="down")  # critical, raised later
    rows = page.locator("#alarm-rows tr[data-alarm]")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text(hot["uid"])  # critical first although newer
    expect(rows.nth(1)).to_contain_text(warm["uid"])
    critical = rows.nth(0)
    expect(critical).to_contain_text("Active, not acknowledged")
    expect(critical).to_contain_text("Stop the press and call maintenance.")
    expect(critical).to_contain_text("Machine: down")
    expect(critical.locator(".age")).to_have_text("just now")

    # Keyboard: focus the first alarm, move down and up, acknowledge with "a".
    critical.focus()
    page.keyboard.press("ArrowDown")
    expect(rows.nth(1)).to_be_focused()
    page.keyboard.press("ArrowUp")
    expect(critical).to_be_focused()
    expect(critical.get_by_role("button", name="Acknowledge")).to_be_visible()
    page.keyboard.press("a")
    expect(critical).to_contain_text("Active, acknowledged")
    expect(critical.get_by_role("button", name="Acknowledge")).to_have_count(0)
    expect(critical).to_be_focused()

    # "s" opens the shelve dialog; the reason is required and goes to the API.
    page.keyboard.press("s")
    dialog = page.get_by_role("dialog", name="Shelve alarm")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Reason").fill("Sensor being replaced")
    dialog.get_by_label("Duration").fill("30")
    dialog.get_by_role("button", name="Shelve").click()
    expect(dialog).to_be_hidden()
    expect(critical.locator(".overlay.shelved")).to_contain_text("Shelved until")
    expect(critical.locator(".overlay.shelved")).to_have_attribute("title", "Reason: Sensor being replaced")
    expect(critical.get_by_role("button", name="Shelve…")).to_have_count(0)

    # History one click away shows the shelve with its reason.
    critical.get_by_role("button", name="History").click()
    history = page.locator(f'tr[data-history-of="{critical.get_attribute("data-alarm")}"]')
    expect(history).to_contain_text("shelved by operator — Sensor being replaced")
    expect(history).to_contain_text("acknowledged by operator")

    critical.get_by_role("button", name="Unshelve").click()
    expect(critical.locator(".overlay.shelved")).to_have_count(0)
    expect(critical.get_by_role("button", name="Shelve…")).to_be_visible()
    expect(history).to_contain_text("unshelved by operator")


def test_filters_stay_in_the_url_and_phones_get_cards_without_sideways_scrolling(stack, chromium_browser, own_device):
    server, seeded = stack
    warm = own_device("press-003")
    post(server, warm, {"vibration": 8.0})
    with page_at(chromium_browser, 390, 844) as page:
        open_console(page, server, seeded)
        row = page.locator("#alarm-rows tr[data-alarm]").filter(has_text=warm["uid"])
        expect(row).to_have_count(1)
        page.get_by_label("Severity").select_option("critical")
        expect(page).to_have_url(f"{server.url}/plants/{seeded['plants']['A']}/alarms/?severity=critical")
        expect(row).to_have_count(0)
        page.reload()
        wait_live(page)
        expect(page.get_by_label("Severity")).to_have_value("critical")
        expect(row).to_have_count(0)
        page.get_by_label("Severity").select_option("warning")
        expect(row).to_have_count(1)
        expect(row.locator('td[data-label="State"]')).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "sideways scroll at 390 px"


def test_resolving_with_a_note_closes_the_alarm_and_removes_it_from_the_console(stack, tab, own_device):
    server, seeded, page = *stack, tab
    press = own_device("press-004")
    open_console(page, server, seeded)
    post(server, press, {"vibration": 7.0})
    row = page.locator("#alarm-rows tr[data-alarm]").filter(has_text=press["uid"])
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Machine: running")
    post(server, press, {"vibration": 7.5}, state="down")  # the machine stops: its alarm says so, live
    expect(row).to_contain_text("Machine: down")
    row.get_by_role("button", name="Resolve…").click()
    dialog = page.get_by_role("dialog", name="Resolve alarm")
    dialog.get_by_label("Resolution note").fill("Bearing replaced")
    dialog.get_by_role("button", name="Resolve").click()
    expect(dialog).to_be_hidden()
    expect(row).to_have_count(0)
