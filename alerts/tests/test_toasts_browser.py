"""In-app notifications in real Chromium against a real Daphne: the toast an operator sees when an
alarm is raised while a plant page is open, the header's unread count and the remembered sound
switch (static/js/toasts.js)."""

import httpx
import pytest

from tests.browser import log_in, require_chromium, wait_live
from tests.servers import seeded_stack

playwright_sync = require_chromium()

# Plant A of tests/e2e_seed.py ("vibration > 5", warning) with an in-app channel routed to it.
SEED = """
from tests.e2e_seed import seed
from alerts.tests.factories import make_channel, make_route
from devices.models import Plant
data = seed(devices=2)
make_route(make_channel(Plant.objects.get(pk=data["plants"]["A"]), "inapp", name="Dashboard"))
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with seeded_stack(tmp_path_factory.mktemp("toasts-e2e"), SEED) as (server, seeded):
        yield server, seeded


def post(server, device: dict, values: dict):
    headers = {"Authorization": f"Device {device['token']}"}
    response = httpx.post(f"{server.url}/api/v1/telemetry/", json={"values": values}, headers=headers)
    assert response.status_code == 202, response.text


def test_an_alarm_raised_while_the_overview_is_open_shows_a_toast_and_counts_as_unread(stack, tab, own_device):
    server, seeded, page = *stack, tab
    press = own_device("press-001")
    plant = seeded["plants"]["A"]
    log_in(page, server, "operator", seeded["password"])
    wait_live(page)
    unread = page.locator("#unread")
    playwright_sync.expect(unread).to_be_hidden()
    second_tab = page.context.new_page()  # the same operator with a second tab of the plant open
    second_tab.goto(page.url)
    wait_live(second_tab)

    post(server, press, {"vibration": 9.5})
    toast = page.locator("#toasts .toast")
    playwright_sync.expect(toast).to_have_count(1)
    playwright_sync.expect(toast).to_have_class("toast toast-warning")
    playwright_sync.expect(toast).to_contain_text("press-001: Vibration high")
    assert toast.locator(".toast-title").inner_text().upper().count("WARNING") == 1  # said once, not twice
    alarm_id = toast.get_attribute("data-alarm")
    assert alarm_id and alarm_id.isdigit()
    link = toast.get_by_role("link", name="Open the alarm")
    playwright_sync.expect(link).to_have_attribute("href", f"/plants/{plant}/alarms/#alarm-{alarm_id}")
    playwright_sync.expect(page.locator("#toasts")).to_have_attribute("aria-live", "polite")
    playwright_sync.expect(unread).to_be_visible()
    playwright_sync.expect(unread).to_contain_text("1 new")
    # Both tabs show the toast, and the notification counts once.
    playwright_sync.expect(second_tab.locator("#toasts .toast")).to_have_count(1)
    playwright_sync.expect(second_tab.locator("#unread")).to_contain_text("1 new")
    playwright_sync.expect(unread).to_contain_text("1 new")
    second_tab.close()

    # The count survives moving between plant pages and ends when the console is opened.
    page.reload()
    playwright_sync.expect(unread).to_contain_text("1 new")
    unread.click()
    page.wait_for_url(f"**/plants/{plant}/alarms/")
    playwright_sync.expect(page.locator("#unread")).to_be_hidden()

    # The toast's link lands on the alarm itself: its row is the keyboard's first stop.
    page.goto(f"{server.url}/plants/{plant}/alarms/#alarm-{alarm_id}")
    row = page.locator(f"#alarm-{alarm_id}")
    playwright_sync.expect(row).to_be_visible()
    playwright_sync.expect(row).to_have_attribute("tabindex", "0")


def test_a_toast_can_be_dismissed_and_the_sound_switch_is_remembered(stack, tab):
    server, seeded, page = *stack, tab
    log_in(page, server, "operator", seeded["password"])
    wait_live(page)
    sound = page.locator("#toast-sound")
    playwright_sync.expect(sound).to_have_attribute("aria-pressed", "true")
    sound.click()
    playwright_sync.expect(sound).to_have_attribute("aria-pressed", "false")
    playwright_sync.expect(sound).to_have_text("Sound off")
    page.reload()
    wait_live(page)
    playwright_sync.expect(page.locator("#toast-sound")).to_have_attribute("aria-pressed", "false")

    # A critical notification stays until dismissed, and makes no sound while the sound is off.
    page.evaluate(
        """document.dispatchEvent(new CustomEvent("live:event", {detail: {kind: "notification",
        severity: "critical", title: "Channel failing", body: "Fix its settings.", alarm_id: null}}))"""
    )
    toast = page.locator("#toasts .toast-critical")
    playwright_sync.expect(toast).to_contain_text("Channel failing")
    console = f"/plants/{seeded['plants']['A']}/alarms/"
    playwright_sync.expect(toast.get_by_role("link")).to_have_attribute("href", console)
    assert page.evaluate("window.__toasts.beeps()") == 0
    toast.get_by_role("button", name="Dismiss").click()
    playwright_sync.expect(toast).to_have_count(0)
