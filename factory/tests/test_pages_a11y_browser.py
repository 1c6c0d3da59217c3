"""Every page, as every demo role that can see it, at three screen sizes, in real Chromium: no
JavaScript, console or CSP error, and accessible (axe-core's WCAG 2.0/2.1 A and AA rules without a
serious or critical violation, readable chart axes and lines, visible keyboard focus).

One database seeded like ``make run`` (``seed_demo``'s plant and users, today's history from a
fixed random seed, alarms in each state, a rollout), one Daphne and one Chromium for the module;
each role logs in once and its page is reused at each size. A failure lists, per size, the rule,
its impact, the elements (CSS selectors) and, for contrast, the colours and ratio: tests/a11y.py.
"""

import re

import pytest

from tests import a11y
from tests.browser import log_in, require_chromium
from tests.servers import seeded_stack

playwright_sync = require_chromium()

SIZES = {"desktop": (1440, 900), "tablet": (768, 1024), "phone": (390, 844)}
# On plant pages a staff superuser sees what the plant admin (manager) sees: checked as the three
# plant roles only, to keep CI inside its time; the admin pages are checked as both.
PLANT_ROLES = ("viewer", "operator", "manager")  # manager: plant admin
ADMIN_ROLES = ("manager", "admin")
FOCUS_STOPS = 12  # Tab presses per page at desktop size: the header, the plant bar and the first controls

SEED = """
import contextlib, io, json
from datetime import timedelta
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.test.utils import override_settings
from django.utils import timezone
from accounts.demo import demo_logins
from alerts.models import Alarm, AlertRule
from alerts.services.alarms import alarm_acknowledge, alarm_clear, alarm_raise, alarm_shelve
from devices.models import Device, Plant
from firmware.services.images import image_create
from firmware.services.rollouts import rollout_create, rollout_start
from simulator.history import history_fill

# DEBUG_PAGES=false turns DEBUG off in the server's settings, and seed_demo refuses to run then.
with contextlib.redirect_stdout(io.StringIO()), override_settings(DEBUG=True):
    call_command("seed_demo")
plant = Plant.objects.get(name="Demo Plant")
now = timezone.now()
history_fill(plant=plant, now=now, seed=13)
# Online and offline tiles whatever the time the run takes: the first stay online for hours, the
# others were last heard an hour ago.
online = ["press-01", "press-02", "robot-01", "temp-01"]
Device.objects.filter(plant=plant, uid__in=online).update(expected_interval=7200)
Device.objects.filter(plant=plant, uid__in=["press-04", "packer-01", "power-01"]).update(
    online=False, last_seen_at=now - timedelta(hours=1))
rules = {rule.name: rule for rule in AlertRule.objects.filter(plant=plant)}
devices = {device.uid: device for device in Device.objects.filter(plant=plant)}
from accounts.models import User
by = User.objects.get(username="operator")
down = alarm_raise(rule=rules["Machine down"], device=devices["press-02"], value=None, at=now - timedelta(minutes=12))
vibration = alarm_raise(rule=rules["Vibration high"], device=devices["press-01"], value=0.09,
                        at=now - timedelta(minutes=40))
alarm_acknowledge(alarm=vibration, by=by, comment="Checking the bearing", now=now - timedelta(minutes=30))
hot = alarm_raise(rule=rules["Temperature high"], device=devices["robot-01"], value=88.0, at=now - timedelta(hours=2))
alarm_clear(rule=rules["Temperature high"], device=devices["robot-01"], value=79.0, at=now - timedelta(hours=1))
quiet = alarm_raise(rule=rules["No data"], device=devices["power-01"], value=None, at=now - timedelta(minutes=50))
alarm_raise(rule=rules["No data"], device=devices["packer-01"], value=None, at=now - timedelta(minutes=50))
alarm_shelve(alarm=quiet, by=by, reason="Sensor being replaced", minutes=60, now=now - timedelta(minutes=5))
image = image_create(plant=plant, version="2.1.0", hardware_models=["HP-400"],
                     file=ContentFile(b"firmware" * 100, name="fw.bin"))
rollout = rollout_create(plant=plant, name="Presses to 2.1.0", image=image, stages=["50%", "100%"])
rollout_start(rollout=rollout)
# A device waiting for approval (the approvals page, plant admins only).
from devices.services.provisioning import device_provision, provisioning_key_create
_key, plain = provisioning_key_create(plant=plant, name="Hall sensors", needs_approval=True)
device_provision(authorization=f"Provision {plain}", address="10.20.0.15",
                 body={"uid": "th-901", "name": "Hall sensor 901", "kind": "sensor", "model": "TH-20"})
logins = {username: password for username, password, _role in demo_logins()}
print(json.dumps({
    "plant": plant.pk, "logins": logins,
    "machine": devices["press-02"].pk, "sensor": devices["temp-01"].pk, "alarm": down.pk, "rollout": rollout.pk,
}))
"""


# The API docs (ReDoc) render the whole schema, thousands of elements: axe needs up to
# a minute for one visit there on a loaded machine, so they are checked at the desktop size only.
DESKTOP_ONLY = ("api_docs",)


# What a page shows only after an event or a click, opened before the checks.
TOASTS = """() => ["critical", "warning", "info"].forEach((severity, i) =>
    document.dispatchEvent(new CustomEvent("live:event", {detail: {kind: "notification", severity,
        alarm_id: 1000 + i, title: "Press 2 down", body: "Machine down for 2 min.\\nCall maintenance."}})))"""


def show_toasts(page):
    """Toasts of each severity and the unread count, from the notification events the live stream
    hands to static/js/toasts.js (live.js re-emits every frame as a ``live:event``)."""
    page.evaluate(TOASTS)
    playwright_sync.expect(page.locator(".toast")).to_have_count(3)


def show_history_and_shelve_dialog(page):
    """An alarm's event history, then the shelve dialog over the console."""
    page.get_by_role("button", name="History").first.click()
    playwright_sync.expect(page.get_by_role("list", name=re.compile("History of alarm"))).to_be_visible()
    page.get_by_role("button", name="Shelve…").first.click()
    playwright_sync.expect(page.locator("#shelve-dialog")).to_be_visible()


SHOW = {"overview_toasts": show_toasts, "alarm_console_dialogs": show_history_and_shelve_dialog}


def pages(seeded: dict) -> list[tuple[str, str, tuple, int]]:
    """(name, path, roles that see it, HTTP status) of every page; role None: logged out."""
    plant = seeded["plant"]
    return [
        ("login", "/accounts/login/", (None,), 200),
        ("home", "/", PLANT_ROLES, 200),
        ("overview", f"/plants/{plant}/", PLANT_ROLES, 200),
        ("machine", f"/devices/{seeded['machine']}/", PLANT_ROLES, 200),
        ("sensor", f"/devices/{seeded['sensor']}/", PLANT_ROLES, 200),
        ("overview_toasts", f"/plants/{plant}/", ("operator",), 200),
        ("alarm_console", f"/plants/{plant}/alarms/", PLANT_ROLES, 200),
        ("alarm_console_dialogs", f"/plants/{plant}/alarms/", ("operator",), 200),
        ("alarm_kpis", f"/alarms/kpis/?plant={plant}", PLANT_ROLES, 200),
        ("oee", f"/analytics/oee/?plant={plant}", PLANT_ROLES, 200),
        ("rollouts", f"/plants/{plant}/rollouts/", PLANT_ROLES, 200),
        ("approvals", f"/plants/{plant}/approvals/", ("manager",), 200),
        ("approvals_forbidden", f"/plants/{plant}/approvals/", ("operator",), 403),
        # The API docs (ReDoc) are the same page for everyone: once, logged out. Swagger UI at
        # /api/swagger/ is left out: its own markup nests buttons in the operation rows and its
        # colours miss AA (method badges 2.3:1), which no stylesheet of ours can repair; the docs
        # link leads to ReDoc.
        ("api_docs", "/api/docs/", (None,), 200),
        ("not_found", "/no-such-page/", (None, "operator"), 404),
        ("not_your_plant", "/plants/999999/", ("operator",), 404),
        ("admin_index", "/admin/", ADMIN_ROLES, 200),
        ("admin_devices", "/admin/devices/device/", ADMIN_ROLES, 200),
        ("admin_device", f"/admin/devices/device/{seeded['machine']}/change/", ADMIN_ROLES, 200),
        ("admin_alarms", "/admin/alerts/alarm/", ADMIN_ROLES, 200),
        ("admin_rules", "/admin/alerts/alertrule/", ADMIN_ROLES, 200),
        ("admin_rollouts", "/admin/firmware/rollout/", ADMIN_ROLES, 200),
        ("admin_rollout", f"/admin/firmware/rollout/{seeded['rollout']}/change/", ADMIN_ROLES, 200),
        ("admin_users", "/admin/accounts/user/", ("admin",), 200),
    ]


# The (page, role) pairs, known before the seed runs (names only; paths come from the seed).
_NO_SEED = dict.fromkeys(("plant", "machine", "sensor", "rollout"), 0)
CASES = [(name, role) for name, _path, roles, _status in pages(_NO_SEED) for role in roles]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # DEBUG_PAGES=false: the branded error pages `make run` shows, not Django's debug pages.
    with seeded_stack(tmp_path_factory.mktemp("a11y-e2e"), SEED, env={"DEBUG_PAGES": "false"}) as (server, seeded):
        yield server, seeded


@pytest.fixture(scope="module")
def sessions(stack, chromium_browser):
    """One browser context and page per role (logged in once), each watched (tests/a11y.py)."""
    server, seeded = stack
    opened = {}

    def session(role):
        if role not in opened:
            context = chromium_browser.new_context(viewport={"width": 1440, "height": 900})
            watched = a11y.watch(context)
            page = context.new_page()
            if role is not None:
                log_in(page, server, role, seeded["logins"][role])
                assert "/accounts/login/" not in page.url, f"{role} could not log in"
            opened[role] = (context, page, watched)
        return opened[role][1:]

    yield session
    for context, _page, _watched in opened.values():
        context.close()


# The page has loaded what it shows: loaded, no fetch in flight (tests/a11y.py counts them) and a live
# page synced, for 150 ms in a row (a script may chain one fetch after another).
SETTLED = """() => {
  const busy = document.readyState !== "complete" || window.__pending > 0
    || (window.__live !== undefined && !(window.__live.syncs >= 1 && window.__live.ready));
  if (busy) { window.__quietSince = undefined; return false; }
  window.__quietSince ??= performance.now();
  return performance.now() - window.__quietSince >= 150;
}"""


def settle(page):
    page.wait_for_function(SETTLED, timeout=15_000)


@pytest.mark.parametrize(("name", "role"), CASES, ids=[f"{name}-{role or 'anonymous'}" for name, role in CASES])
def test_page_is_accessible_and_error_free_at_every_size(stack, sessions, name, role):
    server, seeded = stack
    path, roles, status = next((path, roles, status) for page, path, roles, status in pages(seeded) if page == name)
    # Every page at every size as the last role listed for it (the one that sees the most controls),
    # and as each other role at the desktop size: what a role adds is controls, which do not depend
    # on the width, and the layout at a width does not depend on the role. Three sizes for every role
    # kept the two CI legs over their 25 minutes.
    every_size = role == roles[-1] and name not in DESKTOP_ONLY
    page, watched = sessions(role)
    failures = []
    for size, (width, height) in SIZES.items():
        if size != "desktop" and not every_size:
            continue
        page.set_viewport_size({"width": width, "height": height})
        watched.clear()
        response = page.goto(server.url + path)
        assert response is not None and response.status == status, f"{path} as {role}: {response and response.status}"
        settle(page)
        if name in SHOW:
            SHOW[name](page)
        found = a11y.check(page, watched, focus_stops=FOCUS_STOPS if size == "desktop" else 0)
        if status != 200:  # the page's own status is logged as a failed resource: expected here
            watched.console_errors[:] = [(text, url) for text, url in watched.console_errors if url != page.url]
        if lines := a11y.problems(found, watched):
            failures.append(f"{size} {width}×{height} {path}:\n" + "\n".join(lines))
    assert not failures, f"{name} as {role or 'anonymous'}:\n" + "\n".join(failures)
