"""End to end in real Chromium (Playwright) against a real Daphne: what an operator sees.

One database, one Daphne and one browser serve the whole module (each test gets a fresh browser
context, i.e. fresh cookies). The tests share plant A, so each writes only to devices of its own
(``own_device``, tests/shared_stack.py). On failure a screenshot goes to ``test-artifacts/``.
"""

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.browser import log_in, page_at, require_chromium, wait_live
from tests.servers import manage, post_reading, seeded_stack, time_zone_at_noon

playwright_sync = require_chromium()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # A machine per test that writes (press-001 … press-007) and the hall sensor.
    seed = "from tests.e2e_seed import seed; seed(devices=7)"
    with seeded_stack(tmp_path_factory.mktemp("dashboard-e2e"), seed) as (server, seeded):
        yield server, seeded


def test_operator_sees_the_overview_and_a_posted_reading_live(stack, tab, own_device):
    server, seeded, page = *stack, tab
    press = own_device("press-001")
    plant_a = [device for device in seeded["devices"].values() if device["plant"] == seeded["plants"]["A"]]
    log_in(page, server, "operator", seeded["password"])
    assert page.url.endswith(f"/plants/{seeded['plants']['A']}/"), "one plant: home is its overview"
    playwright_sync.expect(page.get_by_role("heading", level=1)).to_contain_text("Plant A")
    tiles = page.locator(".tile")
    playwright_sync.expect(tiles).to_have_count(len(plant_a))
    assert "paint-b01" not in page.content()
    wait_live(page)

    post_reading(server, press, {"temperature": 81.4, "count_total": 5}, state="running")
    tile = page.locator(f"#tile-{press['id']}")
    playwright_sync.expect(tile.locator('[data-role="value"]')).to_have_text("81.4")
    playwright_sync.expect(tile.locator('[data-role="unit"]')).to_have_text("°C")
    playwright_sync.expect(tile.locator('[data-role="state"]')).to_have_text("running")
    playwright_sync.expect(tile).to_have_class(re.compile(r"\bstate-running\b"))
    playwright_sync.expect(tile.locator('[data-role="seen"]')).to_contain_text("s ago")

    # The line filter keeps the stream and shows only that line's devices.
    page.get_by_label("Line").select_option(label="Assembly line")
    page.get_by_role("button", name="Filter").click()
    playwright_sync.expect(tiles).to_have_count(sum(device["line"] == "Assembly line" for device in plant_a))

    # Keyboard: a tile's link opens the device page.
    page.locator(".tile-link").first.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/devices/\d+/$"))


def test_a_tile_below_the_fold_updates_live_and_draws_its_sparkline_when_scrolled_to(
    stack, chromium_browser, own_device
):
    """Tiles off screen skip layout and paint (CSS content-visibility, for 500-device plants): they
    must still take live readings and draw their sparkline once scrolled into view."""
    server, seeded = stack
    with page_at(chromium_browser, 400, 300) as page:
        log_in(page, server, "operator", seeded["password"])
        wait_live(page)
        last = page.locator(".tile").last
        assert not last.evaluate("node => node.getBoundingClientRect().top < innerHeight"), "last tile on screen"
        device = last.get_attribute("data-device")
        uid = next(u for u, d in seeded["devices"].items() if str(d["id"]) == device)
        post_reading(server, own_device(uid), {"temperature": 42.5})
        playwright_sync.expect(last.locator('[data-role="value"]')).to_have_text("42.5")
        last.scroll_into_view_if_needed()
        playwright_sync.expect(last.locator('[data-role="spark"] canvas')).to_have_count(1)
        playwright_sync.expect(last.locator('[data-role="value"]')).to_be_visible()


def test_device_chart_appends_a_posted_reading_live(stack, tab, own_device):
    server, seeded, page = *stack, tab
    device = own_device("press-003")
    log_in(page, server, "operator", seeded["password"])
    post_reading(server, device, {"temperature": 60.0}, state="running")
    page.goto(f"{server.url}/devices/{device['id']}/")
    wait_live(page)
    playwright_sync.expect(page.locator("#device-state")).to_have_text("running")

    post_reading(server, device, {"temperature": 55.5})
    row = page.locator('#current-values tr[data-metric="temperature"] [data-role="value"]')
    playwright_sync.expect(row).to_have_text("55.5 °C")
    page.wait_for_function("() => window.__dashboard.charts().get('temperature').ys.at(-1) === 55.5")

    # Range picker: 24 h comes from the history API's auto buckets.
    page.get_by_role("button", name="24 h").click()
    playwright_sync.expect(page.locator("#chart-status")).to_contain_text("Resolution: 1m")
    playwright_sync.expect(page.get_by_role("button", name="24 h")).to_have_attribute("aria-pressed", "true")
    # The time axis reads as every other time on the site, 24-hour: "21:00", not uPlot's own "9pm" (failed before).
    axis = "window.__dashboard.charts().get('temperature').plot.axes[0]._values"
    labels = page.wait_for_function(f"() => {axis}?.length && {axis}").json_value()
    assert all(re.fullmatch(r"\d\d:\d\d(\n(\d{4}-)?\d\d-\d\d)?", label) for label in labels), labels


def test_switching_device_changes_the_subscription_without_reconnecting(stack, tab, own_device):
    server, seeded, page = *stack, tab
    first, second = seeded["devices"]["press-001"], own_device("press-004")  # only the second is written to
    log_in(page, server, "operator", seeded["password"])
    page.goto(f"{server.url}/devices/{first['id']}/")
    wait_live(page)
    page.get_by_label("Device", exact=True).select_option(value=f"/devices/{second['id']}/")
    playwright_sync.expect(page.get_by_role("heading", level=1)).to_contain_text(second["uid"])
    assert page.url.endswith(f"/devices/{second['id']}/")
    post_reading(server, second, {"temperature": 42.5})
    row = page.locator('#current-values tr[data-metric="temperature"] [data-role="value"]')
    playwright_sync.expect(row).to_have_text("42.5 °C")
    assert page.evaluate("window.__live.connections") == 1


def test_page_reconnects_after_a_server_restart_and_catches_up_without_a_gap(stack, tab, own_device):
    server, seeded, page = *stack, tab
    device = own_device("press-005")
    log_in(page, server, "operator", seeded["password"])
    post_reading(server, device, {"temperature": 10.0}, ts=datetime.now(UTC) - timedelta(seconds=5))
    page.goto(f"{server.url}/devices/{device['id']}/")
    wait_live(page)

    server.stop()
    playwright_sync.expect(page.locator("#conn")).to_have_attribute("data-state", re.compile("reconnecting|offline"))
    playwright_sync.expect(page.locator("#conn")).to_contain_text("offline since")
    server.start()
    # Posted right after the restart: the page may not have resubscribed yet; the catch-up finds them.
    now = datetime.now(UTC)
    for i, value in enumerate((11.5, 12.5, 13.5)):
        post_reading(server, device, {"temperature": value}, ts=now - timedelta(seconds=3 - i))
    wait_live(page, syncs=2)
    row = page.locator('#current-values tr[data-metric="temperature"] [data-role="value"]')
    playwright_sync.expect(row).to_have_text("13.5 °C")
    ys = page.evaluate("window.__dashboard.charts().get('temperature').ys")
    assert ys[-4:] == [10.0, 11.5, 12.5, 13.5], ys


def test_plant_b_user_sees_none_of_plant_a(stack, tab):
    server, seeded, page = *stack, tab
    log_in(page, server, "viewer_b", seeded["password"])
    playwright_sync.expect(page.get_by_role("heading", level=1)).to_contain_text("Plant B")
    playwright_sync.expect(page.locator(".tile")).to_have_count(1)
    content = page.content()
    assert "paint-b01" in content and "press-001" not in content and "Plant A" not in content
    wait_live(page)

    assert page.goto(f"{server.url}/plants/{seeded['plants']['A']}/").status == 404
    assert page.goto(f"{server.url}/devices/{seeded['devices']['press-001']['id']}/").status == 404
    assert page.goto(f"{server.url}/plants/{seeded['plants']['A']}/alarms/").status == 404
    assert page.goto(f"{server.url}/api/v1/devices/{seeded['devices']['press-001']['id']}/latest/").status == 404
    page.goto(f"{server.url}/plants/{seeded['plants']['B']}/")
    close = page.evaluate(
        """plant => new Promise(resolve => {
            const frames = [];
            const ws = new WebSocket(`ws://${location.host}/ws/live/?plant=${plant}`);
            ws.onmessage = m => frames.push(JSON.parse(m.data));
            ws.onclose = e => resolve({code: e.code, frames});
        })""",
        seeded["plants"]["A"],
    )
    assert close["code"] == 4404
    assert close["frames"][0]["status"] == 404


def test_alarm_raised_by_a_reading_appears_live_in_the_console_and_on_the_tile(stack, tab, own_device):
    server, seeded, page = *stack, tab
    press = own_device("press-002")
    log_in(page, server, "operator", seeded["password"])
    overview = page.context.new_page()
    overview.goto(f"{server.url}/plants/{seeded['plants']['A']}/")
    wait_live(overview)
    page.get_by_role("link", name="Alarms").click()
    playwright_sync.expect(page.get_by_role("heading", level=1)).to_contain_text("alarms")
    wait_live(page)
    playwright_sync.expect(page.get_by_role("columnheader", name="Severity")).to_be_visible()
    playwright_sync.expect(page.locator("#alarm-source")).to_contain_text("new ones appear live")

    post_reading(server, press, {"vibration": 9.5}, state="running")
    row = page.locator("#alarm-rows tr[data-alarm]").filter(has_text=press["uid"])  # the plant's console
    playwright_sync.expect(row).to_have_count(1)
    playwright_sync.expect(row).to_contain_text("warning")
    tile_alarms = overview.locator(f'#tile-{press["id"]} [data-role="alarms"]')
    playwright_sync.expect(tile_alarms).to_have_text("1")

    row.get_by_role("button", name="Acknowledge").click()
    playwright_sync.expect(row).to_contain_text("Active, acknowledged")
    overview.close()


def test_overview_tiles_show_todays_oee_and_open_alarm_counts_that_change_live(stack, tab, own_device):
    server, seeded, page = *stack, tab
    plant, press, hall = seeded["plants"]["A"], own_device("press-006"), seeded["devices"]["hall-temp"]
    # A 24-hour shift: all of today is planned. The press ran 10 minutes (200 pieces, 10 rejects), then broke down.
    # The plant's clock reads about noon, so local midnight never splits those minutes between two days.
    manage(  # what an admin would set up, on the server's database
        server.env,
        "shell",
        "-c",
        "from analytics.tests.factories import make_shift; from devices.models import Plant; "
        f"Plant.objects.filter(pk={plant}).update(time_zone='{time_zone_at_noon()}'); "
        f"make_shift(Plant.objects.get(pk={plant}), 'All day', '00:00', '00:00')",
    )
    now = datetime.now(UTC)
    started, stopped = now - timedelta(minutes=15), now - timedelta(minutes=5)
    post_reading(server, press, {"count_total": 0, "count_good": 0}, state="running", ts=started)
    post_reading(server, press, {"count_total": 200, "count_good": 190}, state="down", ts=stopped)
    log_in(page, server, "operator", seeded["password"])
    with page.expect_response(lambda r: "/api/v1/analytics/oee/" in r.url and "per_device=true" in r.url) as answered:
        page.goto(f"{server.url}/plants/{plant}/")
    wait_live(page)
    machine = next(row for row in answered.value.json()["devices"] if row["device"] == press["id"])
    assert 0 < machine["oee"] < 100 and machine["performance"] == 83.33 and machine["quality"] == 95.0, machine
    tile = page.locator(f"#tile-{press['id']}")
    expect = playwright_sync.expect
    expect(tile.locator('[data-role="oee"]')).to_have_text(f"{machine['oee']:.2f} %")
    factors = re.compile(r"A [\d.]+ % · P 83\.33 % · Q 95\.00 %")
    expect(tile.locator('[data-role="oee"]')).to_have_attribute("title", factors)
    expect(tile.locator('[data-role="oee-apq"]')).to_contain_text("P 83.33 · Q 95.00")
    # Asked again now, the API says the same (a stopped machine's OEE moves by far less than 0.01 a second).
    again = page.request.get(f"{server.url}/api/v1/analytics/oee/?plant={plant}&per_device=true").json()
    assert abs(next(r["oee"] for r in again["devices"] if r["device"] == press["id"]) - machine["oee"]) <= 0.01
    expect(page.locator(f"#tile-{hall['id']} [data-role='oee']")).to_have_count(0)  # a sensor: no OEE, not 0 %

    # Open alarm counts: from the counts API at load, then live.
    alarms = tile.locator('[data-role="alarms"]')
    expect(alarms).to_have_text("0")
    post_reading(server, press, {"vibration": 9.5})
    expect(alarms).to_have_text("1")
    expect(tile).to_have_class(re.compile(r"\bhas-alarms\b"))
    page.reload()
    wait_live(page)
    expect(alarms).to_have_text("1")
    alarm = page.request.get(f"{server.url}/api/v1/alarms/?device={press['id']}&open=true").json()["results"][0]
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    resolved = page.request.post(
        f"{server.url}/api/v1/alarms/{alarm['id']}/resolve/",
        data={"note": "bearing replaced"},
        headers={"X-CSRFToken": csrf, "Referer": f"{server.url}/"},
    )
    assert resolved.status == 200, resolved.text()
    expect(alarms).to_have_text("0")


def test_overview_fits_a_tablet_in_portrait(stack, chromium_browser):
    server, seeded = stack
    with page_at(chromium_browser, 768, 1024) as page:
        log_in(page, server, "operator", seeded["password"])
        wait_live(page)
        assert page.evaluate("document.documentElement.scrollWidth") <= 768, "no horizontal scrolling"
