"""The machine and sensor page in real Chromium against a real Daphne, at desktop, tablet and phone
sizes: an operator finds the down machine from the overview, sees why and since when, and exports
its last 24 hours, without typing a URL; alarms and the stop follow live; empty charts say why.

One database, one Daphne and one browser for the module; each test writes to devices of its own
(``own_device``). Plant A (Europe/Berlin) has a warning rule (vibration > 5), a critical one
(temperature > 90) and the reason code "Tool breakage".
"""

import csv
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from tests.browser import log_in, page_at, require_chromium, wait_live
from tests.servers import post_reading, seeded_stack

playwright_sync = require_chromium()
expect = playwright_sync.expect

PLANT_TZ = ZoneInfo("Europe/Berlin")
SIZES = {"desktop": (1440, 900), "tablet": (768, 1024), "phone": (390, 844)}

SEED = """
import contextlib, io, json
from datetime import timedelta
from django.utils import timezone
from alerts.tests.factories import make_rule
from analytics.models import ReasonCode
from analytics.tests.factories import make_shift
from devices.models import Device, Plant
from devices.services.ingest import IngestItem, telemetry_store
from devices.services.rollups import rollups_refresh
from devices.services.telemetry_payload import Message
from devices.tests.factories import make_device, make_token
from tests.e2e_seed import seed
with contextlib.redirect_stdout(io.StringIO()):
    data = seed(devices=6)
plant = Plant.objects.get(pk=data["plants"]["A"])
make_rule(plant, name="Overheating", metric="temperature", threshold=90.0, severity="critical",
          action="Stop the press and call maintenance.")
ReasonCode.objects.create(plant=plant, code="tool", name="Tool breakage", category="equipment_failure")
make_shift(plant, "Around the clock", "00:00", "00:00")
line = Device.objects.get(uid="press-001").line
now = timezone.now()
quiet = make_device(line, "quiet-01")  # last heard two hours ago: offline
telemetry_store([IngestItem(device=quiet, messages=[Message(ts=now - timedelta(hours=2), values={"temperature": 50.0},
    state="running")])], received_at=now - timedelta(hours=2))
# 25 readings a second, all under the vibration rule.
dense = make_device(line, "dense-01", kind="sensor", ideal_cycle_time=None)
start = (now - timedelta(hours=3)).replace(second=0, microsecond=0)
batch = [Message(ts=start + timedelta(milliseconds=40 * i), values={"vibration": 1.0 + i % 7 / 2}, state=None)
         for i in range(20500)]
telemetry_store([IngestItem(device=dense, messages=batch)], received_at=now - timedelta(hours=2))
rollups_refresh()
never = make_device(line, "never-01")
for d in (quiet, dense, never):
    data["devices"][d.uid] = {"id": d.pk, "token": make_token(d)[1], "plant": d.plant_id, "line": line.name}
data["dense_start"] = start.isoformat()
print(json.dumps(data))
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with seeded_stack(tmp_path_factory.mktemp("device-page-e2e"), SEED) as (server, seeded):
        yield server, seeded


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def watch_console(page) -> list[str]:
    """Console errors and failed requests of ``page`` (the browser's favicon request aside)."""
    errors = []
    page.on(
        "console",
        lambda message: (
            errors.append(message.text)
            if message.type == "error" and not message.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda response: (
            errors.append(f"{response.status} {response.url}")
            if response.status >= 400 and not response.url.endswith("/favicon.ico")
            else None
        ),
    )
    return errors


def classify(page, device: dict, start: datetime, reason: str):
    """Classify the stop as the logged-in operator does, through the stops API."""
    result = page.evaluate(
        """async ([device, start, name]) => {
            const csrf = document.cookie.split("; ").find((c) => c.startsWith("csrftoken=")).split("=")[1];
            const headers = { Accept: "application/json" };
            const codes = await (await fetch("/api/v1/reason-codes/", { headers })).json();
            const reason = (codes.results || codes).find((code) => code.name === name).id;
            const response = await fetch("/api/v1/analytics/stops/", {
                method: "POST", body: JSON.stringify({ device, start, reason }),
                headers: { ...headers, "Content-Type": "application/json", "X-CSRFToken": csrf },
            });
            return [response.status, await response.text()];
        }""",
        [device["id"], iso(start), reason],
    )
    assert result[0] == 201, result


@pytest.mark.parametrize("size", SIZES)
def test_operator_finds_the_down_machine_sees_why_and_since_when_and_exports_its_last_24_hours(
    stack, chromium_browser, own_device, size
):
    server, seeded = stack
    press = own_device({"desktop": "press-001", "tablet": "press-002", "phone": "press-003"}[size])
    now = datetime.now(UTC)
    down_at = now - timedelta(minutes=20)
    counts = {"count_total": 0, "count_good": 0}
    post_reading(
        server,
        press,
        {"temperature": 70.0, "vibration": 1.0, **counts},
        state="running",
        ts=now - timedelta(minutes=40),
    )
    counts = {"count_total": 300, "count_good": 290}
    post_reading(server, press, {"temperature": 97.0, **counts}, state="down", ts=down_at)  # raises "Overheating"
    post_reading(server, press, {"temperature": 96.5}, ts=now - timedelta(seconds=5))
    with page_at(chromium_browser, *SIZES[size]) as page:
        errors = watch_console(page)
        log_in(page, server, "operator", seeded["password"])
        classify(page, press, down_at, "Tool breakage")

        # From the overview (the home page) to the machine: a click, no typed URL.
        wait_live(page)
        page.locator(f"#tile-{press['id']} .tile-link").click()
        page.wait_for_url(re.compile(rf"/devices/{press['id']}/$"))
        wait_live(page)

        now_card = page.locator("#machine-now")
        expect(now_card.locator('[data-role="state"]')).to_have_text("down")
        since = f"since {down_at.astimezone(PLANT_TZ):%Y-%m-%d %H:%M}"
        expect(now_card.locator('[data-role="since"]')).to_contain_text(since)
        expect(now_card.locator('[data-role="for"]')).to_have_text(re.compile(r"^(19|20|21) min$"))
        expect(now_card.locator('[data-role="reason"]')).to_have_text("Tool breakage (Equipment failure)")
        # Today's OEE (a 24-hour shift): down for the last 20 minutes, so availability is below 100 %.
        expect(now_card.locator('[data-role="oee"]')).to_have_text(re.compile(r"^\d+\.\d %$"))
        expect(now_card.locator('[data-role="oee-apq"]')).to_have_text(re.compile(r"^A \d+\.\d % · P .+ · Q .+$"))
        availability = now_card.locator('[data-role="oee-apq"]').text_content().split(" %")[0][2:]
        assert float(availability) < 100

        alarm = page.locator("#device-alarms [data-alarm]")
        expect(alarm).to_have_count(1)
        expect(alarm).to_contain_text("Overheating")
        expect(alarm).to_contain_text("Active, not acknowledged")
        expect(alarm).to_contain_text("Stop the press and call maintenance.")
        expect(alarm.get_by_role("link", name="Open in the alarm console")).to_have_attribute(
            "href", re.compile(rf"/plants/{seeded['plants']['A']}/alarms/#alarm-\d+$")
        )

        # The rule's threshold is drawn on the temperature chart at 90.
        chart = page.locator('.chart[data-metric="temperature"]')
        expect(chart.locator('.thresholds li[data-value="90"]')).to_have_text("Overheating: > 90 °C (critical)")
        page.wait_for_function("() => window.__dashboard.charts().get('temperature')?.drawn.length === 1")
        drawn = page.evaluate("window.__dashboard.charts().get('temperature').drawn[0]")
        assert drawn["value"] == 90.0 and drawn["at"] == pytest.approx(90.0, abs=0.5), drawn
        # The time axis spans the range chosen (15 min), not what one or two points would suggest.
        scale = "window.__dashboard.charts().get('temperature').plot.scales.x"
        x = page.evaluate(f"(({{ min, max }}) => ({{ min, max }}))({scale})")
        assert x["max"] - x["min"] == pytest.approx(900, abs=5), x

        # The state strip: running then down, a legend and hour labels in plant time.
        expect(page.locator('#state-strip rect[data-state="down"]')).to_have_count(1)
        expect(page.locator('#state-strip rect[data-state="running"]')).to_have_count(1)
        for label in ("Running", "Idle", "Setup", "Down", "Planned stop", "Offline", "No data"):
            expect(page.locator("#strip-legend")).to_contain_text(label)
        ticks = page.locator("#strip-axis text").all_text_contents()
        assert len(ticks) == 8 and all(re.fullmatch(r"(0[0-9]|1[0-9]|2[0-3]):00", t) for t in ticks), ticks
        assert int(ticks[-1][:2]) in {(now.astimezone(PLANT_TZ).hour - h) // 3 * 3 % 24 for h in (0, 1)}
        expect(page.locator("#state-strip-section")).to_contain_text("Europe/Berlin")

        # Nothing wider than the screen.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")

        # Export the last 24 hours: every metric, the rows the history API returns for that range.
        page.get_by_role("button", name="24 h").click()
        with page.expect_download() as download_info:
            page.get_by_role("link", name="Export CSV").click()
        download = download_info.value
        query = {k: v[0] for k, v in parse_qs(urlsplit(download.url).query).items()}
        assert query["bucket"] == "raw"
        span = datetime.fromisoformat(query["end"]) - datetime.fromisoformat(query["start"])
        assert span == timedelta(hours=24)
        with open(download.path(), newline="") as file:
            rows = list(csv.reader(file))
        assert rows[0] == ["ts", "metric", "value"]
        expected = []
        for metric in ("count_good", "count_total", "temperature", "vibration"):
            api = page.request.get(
                f"{server.url}/api/v1/devices/{press['id']}/telemetry/", params={**query, "metric": metric}
            )
            expected += [[p["ts"], metric, str(p["value"])] for p in api.json()["points"]]
        assert rows[1:] == expected and len(expected) == 8
        assert not errors, errors


def test_alarms_and_the_stop_follow_live(stack, chromium_browser, own_device):
    server, seeded = stack
    press = own_device("press-004")
    post_reading(server, press, {"temperature": 70.0, "vibration": 1.0}, state="running")
    with page_at(chromium_browser, *SIZES["tablet"]) as page:
        errors = watch_console(page)
        log_in(page, server, "operator", seeded["password"])
        page.goto(f"{server.url}/devices/{press['id']}/")
        wait_live(page)
        expect(page.locator("#no-alarms")).to_be_visible()
        expect(page.locator("#machine-now [data-role='reason-line']")).to_be_hidden()

        post_reading(server, press, {"vibration": 9.5})
        alarms = page.locator("#device-alarms [data-alarm]")
        expect(alarms).to_have_count(1)
        expect(alarms.first).to_contain_text("Vibration high")
        expect(alarms.first).to_contain_text("Stop and check the bearing.")
        expect(page.locator("#alarm-count")).to_have_text("1")
        expect(page.locator("#no-alarms")).to_be_hidden()

        down_at = datetime.now(UTC)
        post_reading(server, press, {"temperature": 95.0}, state="down", ts=down_at)
        expect(alarms).to_have_count(2)
        expect(alarms.first).to_contain_text("Overheating")  # critical above the older warning
        expect(alarms.first).to_contain_text("Critical")
        now_card = page.locator("#machine-now")
        expect(now_card.locator('[data-role="state"]')).to_have_text("down")
        since = f"since {down_at.astimezone(PLANT_TZ):%Y-%m-%d %H:%M}"
        expect(now_card.locator('[data-role="since"]')).to_contain_text(since)
        expect(now_card.locator('[data-role="reason"]')).to_have_text("not classified yet")
        expect(now_card.get_by_role("link", name="Classify the stop on the OEE page")).to_be_visible()

        post_reading(server, press, {"vibration": 1.0})
        vibration = alarms.filter(has_text="Vibration high")
        expect(vibration).to_contain_text("Cleared, not acknowledged")
        post_reading(server, press, {"temperature": 60.0}, state="running")
        expect(now_card.locator('[data-role="state"]')).to_have_text("running")
        expect(now_card.locator("[data-role='reason-line']")).to_be_hidden()
        assert not errors, errors


def test_each_empty_chart_says_why(stack, chromium_browser, own_device):
    server, seeded = stack
    press = own_device("press-005")
    post_reading(server, press, {"temperature": 70.0}, ts=datetime.now(UTC) - timedelta(minutes=30))
    post_reading(server, press, {"vibration": 1.0})  # online, but no temperature in the last 15 minutes
    with page_at(chromium_browser, *SIZES["desktop"]) as page:
        errors = watch_console(page)
        log_in(page, server, "operator", seeded["password"])

        page.goto(f"{server.url}/devices/{press['id']}/")
        wait_live(page)
        temperature = page.locator('.chart[data-metric="temperature"]')
        expect(temperature).to_have_attribute("data-empty", "no-data")
        expect(temperature.locator(".chart-empty")).to_have_text(
            "No temperature readings in this range. "
            "Pick a longer range, or check that the device still sends temperature."
        )
        expect(temperature.locator(".plot")).to_be_hidden()
        expect(page.locator('.chart[data-metric="vibration"] .plot')).to_be_visible()
        page.get_by_role("button", name="1 h").click()
        expect(temperature).to_have_attribute("data-empty", "")
        expect(temperature.locator(".plot")).to_be_visible()

        page.goto(f"{server.url}/devices/{seeded['devices']['quiet-01']['id']}/")
        wait_live(page)
        quiet = page.locator('.chart[data-metric="temperature"]')
        expect(quiet).to_have_attribute("data-empty", "offline")
        expect(quiet.locator(".chart-empty")).to_contain_text(
            "No temperature readings in this range: the device is offline (last heard 2 h ago). "
            "Check its power and network"
        )

        page.goto(f"{server.url}/devices/{seeded['devices']['dense-01']['id']}/")
        wait_live(page)
        start = datetime.fromisoformat(seeded["dense_start"])
        page.evaluate(
            """([start, end]) => {
                const local = (iso) => { const d = new Date(iso); d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
                                         return d.toISOString().slice(0, 16); };
                document.getElementById("r-start").value = local(start);
                document.getElementById("r-end").value = local(end);
            }""",
            [iso(start), iso(start + timedelta(minutes=30))],
        )
        page.get_by_role("button", name="Show", exact=True).click()
        dense = page.locator('.chart[data-metric="vibration"]')
        expect(dense).to_have_attribute("data-empty", "too-long")
        expect(dense.locator(".chart-empty")).to_contain_text(
            "Too many vibration readings in this range to draw one by one: pick a shorter range, or show averages."
        )
        # The history API's documented answer to too many raw points (400) is the one error expected.
        refused = [e for e in errors if e.startswith("400 ") and "metric=vibration&bucket=raw" in e]
        assert len(refused) == 1, errors
        errors.remove(refused[0])
        dense.get_by_role("button", name="Show averages").click()
        expect(dense).to_have_attribute("data-empty", "")
        expect(page.locator("#chart-status")).to_have_text("Resolution: 1m")

        page.goto(f"{server.url}/devices/{seeded['devices']['never-01']['id']}/")
        expect(page.locator("#no-charts")).to_have_text(re.compile("^This device has never sent a reading"))
        expect(page.locator(".chart")).to_have_count(0)
        assert not errors, errors


def test_sensor_page_has_no_machine_sections(stack, chromium_browser, own_device):
    server, seeded = stack
    sensor = own_device("hall-temp")
    post_reading(server, sensor, {"temperature": 21.5})
    with page_at(chromium_browser, *SIZES["phone"]) as page:
        log_in(page, server, "operator", seeded["password"])
        page.goto(f"{server.url}/devices/{sensor['id']}/")
        wait_live(page)
        expect(page.locator("#device-state")).to_have_text("online")
        expect(page.locator('.chart[data-metric="temperature"] .plot canvas')).to_have_count(1)
        expect(page.get_by_role("heading", name="Open alarms")).to_be_visible()
        for machine_only in ("#machine-now", "#state-strip-section", "#state-strip"):
            expect(page.locator(machine_only)).to_have_count(0)
        expect(page.get_by_text("State, last 24 h")).to_have_count(0)
        expect(page.get_by_text("OEE today")).to_have_count(0)
        post_reading(server, sensor, {"temperature": 22.5}, state="running")
        value = page.locator('#current-values tr[data-metric="temperature"] [data-role="value"]')
        expect(value).to_have_text("22.5 °C")
        expect(page.locator("#device-state")).to_have_text("online")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
