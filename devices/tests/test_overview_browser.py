"""The plant overview in real Chromium against a real Daphne, at 1440×900, 768×1024, 390×844 and 1920×1080:
the plant header and the tiles follow machine states and alarms live, the header's OEE is the OEE
API's for the same windows, sensors read online/offline, and nothing is clipped on a phone.

One plant ("Board", devices/tests/overview_seed.py) for the module, in a time zone where it is about
noon (inside the day shift, 06:00–18:00); each test writes only to machines of its own
(``own_device``). Its machines are expected hourly, so none falls offline by time while the module
runs and the header's counts move only when a test moves them.
"""

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.browser import log_in, page_at, require_chromium, wait_live
from tests.servers import post_reading, seeded_stack, time_zone_at_noon

playwright_sync = require_chromium()
expect = playwright_sync.expect

RED, YELLOW = "rgb(255, 92, 92)", "rgb(255, 204, 51)"  # --bad / --down, --warn (static/css/factory.css)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    seed = f"from devices.tests.overview_seed import seed; seed({time_zone_at_noon()!r})"
    with seeded_stack(tmp_path_factory.mktemp("overview-e2e"), seed) as (server, seeded):
        yield server, seeded


def open_overview(page, server, seeded) -> list[str]:
    """Log in and open the plant's overview; returns the list that collects its failed API calls and
    console errors (a missing favicon is the browser's own request: not among the page's responses)."""
    problems = []
    page.on("response", lambda r: r.status >= 400 and problems.append(f"HTTP {r.status} {r.url}"))
    page.on(
        "console",
        lambda m: m.type == "error" and not m.text.startswith("Failed to load resource") and problems.append(m.text),
    )
    log_in(page, server, "operator", seeded["password"])
    page.goto(f"{server.url}/plants/{seeded['plant']}/")
    wait_live(page)
    return problems


def header(page, key: str, box: str = "#machine-counts"):
    attribute = "severity" if box == "#alarm-counts" else "state"
    return page.locator(f'{box} [data-{attribute}="{key}"] [data-role="n"]')


def header_count(page, key: str, box: str = "#machine-counts") -> int:
    return int(header(page, key, box).text_content())


def css(locator, prop: str) -> str:
    return locator.evaluate(f"node => getComputedStyle(node).{prop}")


def test_header_counts_and_tile_follow_a_machines_state_and_alarms_live(stack, chromium_browser, own_device):
    server, seeded = stack
    machine = own_device("m-01")
    with page_at(chromium_browser, 1440, 900) as page:
        problems = open_overview(page, server, seeded)
        tile = page.locator(f"#tile-{machine['id']}")
        offline, running, down = (header_count(page, s) for s in ("offline", "running", "down"))
        warning, critical = (header_count(page, s, "#alarm-counts") for s in ("warning", "critical"))
        expect(tile.locator('[data-role="state"]')).to_have_text("offline")

        now = datetime.now(UTC)
        post_reading(server, machine, {"temperature": 20.5}, state="running", ts=now - timedelta(minutes=20))
        expect(header(page, "running")).to_have_text(str(running + 1))
        expect(header(page, "offline")).to_have_text(str(offline - 1))
        expect(tile.locator('[data-role="state"]')).to_have_text("running")
        expect(tile.locator('[data-role="since"]')).to_have_text("for 20 min")

        post_reading(server, machine, {"temperature": 21.5}, state="down", ts=now - timedelta(minutes=12))
        expect(header(page, "down")).to_have_text(str(down + 1))
        expect(header(page, "running")).to_have_text(str(running))
        expect(tile.locator('[data-role="state"]')).to_have_text("down")
        expect(tile.locator('[data-role="since"]')).to_have_text("for 12 min")
        expect(tile.locator('[data-role="value"]')).to_have_text("21.5")  # temperature: 1 decimal
        expect(tile.locator('[data-role="metric"]')).to_have_text("Temperature")

        # An alarm: the header's count per severity and the tile's edge (its worst open alarm), live.
        assert tile.get_attribute("data-alarm") == ""
        post_reading(server, machine, {"vibration": 9.5})
        expect(header(page, "warning", "#alarm-counts")).to_have_text(str(warning + 1))
        expect(tile).to_have_attribute("data-alarm", "warning")
        assert css(tile, "borderTopColor") == css(tile, "borderRightColor") == YELLOW
        assert css(tile, "borderLeftColor") == RED, "the left edge keeps the state's colour (down)"
        post_reading(server, machine, {"pressure": 12.0})
        expect(header(page, "critical", "#alarm-counts")).to_have_text(str(critical + 1))
        expect(tile).to_have_attribute("data-alarm", "critical")
        assert css(tile, "borderTopColor") == css(tile, "borderBottomColor") == RED
        expect(tile.locator('[data-role="alarms"]')).to_have_text("2")
        assert not problems, problems


def test_alarm_count_stays_red_and_time_in_state_counts_on_after_a_state_change(stack, chromium_browser, own_device):
    """The tile's state change used to rewrite the tile's classes and drop ``has-alarms``: its red
    alarm count turned white (failed before: the colour was rgb(232, 238, 245))."""
    server, seeded = stack
    machine = own_device("m-02")
    with page_at(chromium_browser, 768, 1024) as page:
        open_overview(page, server, seeded)
        tile = page.locator(f"#tile-{machine['id']}")
        count = tile.locator('[data-role="alarms"]')
        post_reading(server, machine, {"vibration": 9.5}, state="running")
        expect(count).to_have_text("1")
        expect(tile.locator('[data-role="state"]')).to_have_text("running")
        assert css(count, "color") == RED

        post_reading(server, machine, {"vibration": 9.6}, state="idle")
        expect(tile.locator('[data-role="state"]')).to_have_text("idle")
        expect(tile).to_have_class(re.compile(r"\bstate-idle\b"))
        assert css(count, "color") == RED, "the open alarm's count stays red after the state changed"
        expect(tile).to_have_attribute("data-alarm", "warning")

        # Time in state is live: the seconds count on without any new message.
        since = tile.locator('[data-role="since"]')
        expect(since).to_have_text(re.compile(r"^for \d+ s$"))
        first = int(since.text_content().split()[1])
        page.wait_for_function(
            "([node, first]) => parseInt(node.textContent.split(' ')[1]) > first",
            arg=[since.element_handle(), first],
            timeout=10_000,
        )


def test_sensors_read_online_or_offline_never_an_unknown_machine_state(stack, chromium_browser, own_device):
    server, seeded = stack
    sensor, silent = own_device("s-01"), seeded["devices"]["s-02"]
    with page_at(chromium_browser, 390, 844) as page:
        open_overview(page, server, seeded)
        expect(page.locator(f"#tile-{silent['id']} [data-role='state']")).to_have_text("offline")
        expect(page.locator(".tile[data-kind='sensor'] [data-role='state']", has_text="unknown")).to_have_count(0)
        online, offline = (header_count(page, s, "#sensor-counts") for s in ("online", "offline"))
        tile = page.locator(f"#tile-{sensor['id']}")

        post_reading(server, sensor, {"temperature": 23.4})
        expect(tile.locator('[data-role="state"]')).to_have_text("online")
        expect(tile).to_have_class(re.compile(r"\bstate-online\b"))
        expect(header(page, "online", "#sensor-counts")).to_have_text(str(online + 1))
        expect(header(page, "offline", "#sensor-counts")).to_have_text(str(offline - 1))
        assert tile.locator('[data-role="oee"]').count() == 0, "a sensor has no OEE"

        # Expected every 2 s: after three missed intervals it reads offline, in the header too.
        expect(tile.locator('[data-role="state"]')).to_have_text("offline", timeout=20_000)
        expect(header(page, "offline", "#sensor-counts")).to_have_text(str(offline))
        expect(tile.locator('[data-role="since"]')).to_have_text(re.compile(r"^for \d+ s$"))


def test_header_oee_is_the_oee_apis_for_today_and_for_the_running_shift(stack, chromium_browser, own_device):
    server, seeded = stack
    machine = own_device("m-03")
    now = datetime.now(UTC)
    post_reading(server, machine, {"count_total": 0, "count_good": 0}, state="running", ts=now - timedelta(minutes=15))
    post_reading(server, machine, {"count_total": 200, "count_good": 190}, state="down", ts=now - timedelta(minutes=5))
    with page_at(chromium_browser, 1440, 900) as page:
        open_overview(page, server, seeded)
        shown = {}
        for window in ("today", "shift"):
            node = page.locator(f"#oee-{window}")
            expect(node).to_have_attribute("data-end", re.compile(r"\d"))
            start, end = node.get_attribute("data-start"), node.get_attribute("data-end")
            api = page.request.get(
                f"{server.url}/api/v1/analytics/oee/", params={"plant": seeded["plant"], "start": start, "end": end}
            ).json()
            assert api["total"]["oee"] is not None and api["total"]["planned_seconds"] > 0, api["total"]
            expect(node).to_have_text(f"{api['total']['oee']:.2f} %")
            shown[window] = (datetime.fromisoformat(start), api["total"]["oee"])

        zone = ZoneInfo(page.evaluate("JSON.parse(document.getElementById('plant-formats').textContent).tz"))
        assert shown["today"][0].astimezone(zone).strftime("%H:%M") == "00:00"
        assert shown["shift"][0].astimezone(zone).strftime("%H:%M") == "06:00", "the day shift's start"
        assert shown["today"][1] != shown["shift"][1], "two windows, two figures (the night shift counts today)"
        shift = page.locator("#shift")
        expect(shift.locator('[data-role="name"]')).to_have_text("Day")
        expect(shift.locator('[data-role="left"]')).to_have_text(re.compile(r"^[56] h( \d+ min)? left$"))
        expect(shift.locator('[data-role="range"]')).to_have_text("06:00–18:00")


def test_values_fit_their_tiles_on_a_phone(stack, chromium_browser, own_device):
    server, seeded = stack
    earlier = datetime.now(UTC) - timedelta(hours=26, minutes=40)
    readings = (
        ("m-04", {"temperature": 1234.56}, "planned_stop"),
        ("m-05", {"power": 98765.4}, "setup"),
        ("m-06", {"count_total": 1234567}, "running"),
        ("m-07", {"spindle_motor_current_phase_a": 123.45}, "down"),
    )
    for uid, values, state in readings:
        device = own_device(uid)
        post_reading(server, device, values, state=state, ts=earlier)
        post_reading(server, device, values)
    with page_at(chromium_browser, 390, 844) as page:
        open_overview(page, server, seeded)
        expect(page.locator(f"#tile-{seeded['devices']['m-04']['id']} [data-role='since']")).to_have_text("for 1 d 2 h")
        expect(page.locator(f"#tile-{seeded['devices']['m-05']['id']} [data-role='unit']")).to_have_text("kW")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, "no horizontal scrolling"
        overflowing = []
        for tile in page.locator(".tile").all():
            tile.scroll_into_view_if_needed()
            overflowing += tile.evaluate(OVERFLOWS)
        overflowing += page.locator("#board").evaluate(OVERFLOWS)
        assert not overflowing, overflowing


# Every box whose content is wider than it (scrollWidth > clientWidth), and every value, unit,
# state, time-in-state or name that reaches outside its tile or header group.
OVERFLOWS = """root => {
  const found = [];
  const boxes = '.board-group, .board-counts, .tile-metric, .tile-state, .tile-facts, .tile-link';
  for (const box of [root, ...root.querySelectorAll(boxes)]) {
    if (box.scrollWidth > box.clientWidth) {
      found.push(`${box.className} of ${root.id}: ${box.scrollWidth} > ${box.clientWidth}`);
    }
  }
  const edge = root.getBoundingClientRect();
  const roles = ['value', 'unit', 'state', 'since', 'metric', 'n'].map((role) => `[data-role="${role}"]`);
  for (const part of root.querySelectorAll([...roles, '.tile-name', 'output'].join(', '))) {
    const box = part.getBoundingClientRect();
    if (box.width && (box.left < edge.left - 0.5 || box.right > edge.right + 0.5)) {
      const what = `${part.dataset.role || part.className} "${part.textContent}" of ${root.id}`;
      found.push(`${what}: ${box.left}–${box.right} outside ${edge.left}–${edge.right}`);
    }
  }
  return found;
}"""


def test_overview_uses_the_whole_width_of_a_wall_screen(stack, chromium_browser):
    server, seeded = stack
    with page_at(chromium_browser, 1920, 1080) as page:
        open_overview(page, server, seeded)
        width = page.locator("#tiles").evaluate("node => node.getBoundingClientRect().width")
        assert width >= 1920 - 64, f"tiles span {width} px of 1920"
        columns = page.locator("#tiles").evaluate("n => getComputedStyle(n).gridTemplateColumns.split(' ').length")
        assert columns >= 6, columns
        board = page.locator("#board").evaluate("node => node.getBoundingClientRect().width")
        assert board >= 1920 - 64, f"the header spans {board} px of 1920"
