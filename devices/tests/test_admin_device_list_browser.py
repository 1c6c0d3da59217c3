"""The device change list in real Chromium at 1440 × 900: one line per device.

It used to wrap every row over two or three lines: the latest values (five metrics of a machine)
filled one column, beside the plant-and-line label and a long last-seen date.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.roles import Role
from devices.models import Device
from devices.services.ingest import IngestItem, telemetry_store
from devices.services.telemetry_payload import Message
from devices.tests.factories import PASSWORD, make_device, make_line, make_user
from tests.browser import chromium, log_in, page_at, require_chromium

require_chromium()

# For each cell of the device table: how many lines its text takes (distinct line tops of its text).
LINES_PER_CELL = """() => [...document.querySelectorAll('#result_list tbody tr')].map((row) =>
  Math.max(...[...row.cells].map((cell) => {
    const range = document.createRange();
    range.selectNodeContents(cell);
    return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
  })))"""


@pytest.fixture
def devices(transactional_db, plant_a):
    """Machines with the simulator's five metrics, a state and a last message; a plant admin."""
    lines = [make_line(plant_a, "Stamping"), make_line(plant_a, "Final assembly")]
    now = timezone.now().replace(microsecond=0) - timedelta(minutes=1)
    for n in range(6):
        device = make_device(lines[n % 2], f"press-{n:02d}", name=f"Hydraulic press {n} (hall 2, bay {n})",
                             model="HP-400", firmware_version="1.12.3")  # fmt: skip
        values = {"temperature": 61.237 + n, "vibration": 0.0213, "power": 17.482, "count_total": 123456 + n,
                  "count_good": 120001 + n}  # fmt: skip
        message = Message(ts=now, values=values, state="running" if n % 3 else "planned_stop")
        telemetry_store([IngestItem(device=Device.objects.get(pk=device.pk), messages=[message])], received_at=now)
    make_user("boss", plant=plant_a, role=Role.ADMIN)


def test_device_list_shows_one_line_per_device_at_1440_by_900(live_server, devices, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with chromium() as browser, page_at(browser, 1440, 900) as page:
        log_in(page, live_server, "boss", PASSWORD)
        page.goto(f"{live_server.url}/admin/devices/device/")
        assert page.locator("#result_list tbody tr").count() == 6
        assert page.evaluate(LINES_PER_CELL) == [1] * 6
        # …and all of it in view at this size, beside both sidebars: no sideways scroll.
        hidden = "(r) => r.scrollWidth - r.clientWidth"
        assert page.locator("#changelist .results").evaluate(hidden) <= 0
        assert page.get_by_role("columnheader", name="last seen").is_visible()
        page.goto(f"{live_server.url}/admin/devices/device/{Device.objects.get(uid='press-01').pk}/change/")
        assert page.get_by_role("row", name="Pieces made").count() == 1  # the values are on the device's page
