"""The Content-Security-Policy in real Chromium (issue 15 item 4): every kind of page, as the
superuser, loads and runs with the header present and no violation (the dashboard's live pages
with their WebSocket, the admin's lists, change forms and device import, ReDoc and Swagger UI, the
login page and the site's 404); what an attacker would inject (an inline script, an inline event
handler, a ``javascript:`` link, a style attribute) is refused; and the shared ``page_at`` fixture
fails the test in which a violation happens.

One server (``API_DOCS_REQUIRE_LOGIN=true``, ``DEBUG_PAGES=false``: the production answers for the
docs and the error pages) on ``seed_demo``'s data with a rollout, one Chromium and one logged-in
page for the module.
"""

import re

import pytest

from tests.browser import csp_violations, flush_csp_reports, log_in, page_at, require_chromium, wait_live
from tests.servers import seeded_stack

playwright_sync = require_chromium()
expect = playwright_sync.expect

SEED = """
import contextlib, io, json
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.test.utils import override_settings
from accounts.demo import demo_logins
from accounts.models import User
from devices.models import Device, Plant
from firmware.services.images import image_create
from firmware.services.rollouts import rollout_create, rollout_start

# DEBUG_PAGES=false turns DEBUG off in the server's settings, and seed_demo refuses to run then.
with contextlib.redirect_stdout(io.StringIO()), override_settings(DEBUG=True):
    call_command("seed_demo")
plant = Plant.objects.get(name="Demo Plant")
devices = Device.objects.filter(plant=plant).order_by("uid")
image = image_create(plant=plant, version="2.1.0", hardware_models=["HP-400"],
                     file=ContentFile(b"firmware" * 100, name="fw.bin"))
rollout = rollout_create(plant=plant, name="Presses to 2.1.0", image=image, stages=["50%", "100%"])
rollout_start(rollout=rollout)
print(json.dumps({
    "plant": plant.pk, "devices": [device.pk for device in devices[:2]], "rollout": rollout.pk,
    "user": User.objects.get(username="operator").pk,
    "logins": {username: password for username, password, _role in demo_logins()},
}))
"""


def page_paths(seeded: dict) -> dict[str, str]:
    """Every kind of page the superuser opens, by name."""
    plant, (device, _other) = seeded["plant"], seeded["devices"]
    return {
        "plants": "/",
        "overview": f"/plants/{plant}/",
        "machine": f"/devices/{device}/",
        "alarm_console": f"/plants/{plant}/alarms/",
        "alarm_kpis": f"/alarms/kpis/?plant={plant}",
        "oee": f"/analytics/oee/?plant={plant}",
        "rollouts": f"/plants/{plant}/rollouts/",
        "not_found": "/no-such-page/",
        "admin_index": "/admin/",
        "admin_devices": "/admin/devices/device/",
        "admin_device": f"/admin/devices/device/{device}/change/",
        "admin_device_add": "/admin/devices/device/add/",
        "admin_device_import": "/admin/devices/device/import/",
        "admin_rollouts": "/admin/firmware/rollout/",
        "admin_rollout": f"/admin/firmware/rollout/{seeded['rollout']}/change/",
        "admin_user": f"/admin/accounts/user/{seeded['user']}/change/",
        "admin_alarms": "/admin/alerts/alarm/",
    }


# What shows that a page has done its work (beyond loading): its scripts ran under the policy.
RENDERED = {
    "api_docs": "[role=menuitem] >> text=alarms",  # ReDoc's side menu, drawn from the schema
    "api_swagger": ".swagger-ui .opblock",  # Swagger UI: one block per operation
}
DOCS = {"api_docs": "/api/docs/", "api_swagger": "/api/swagger/"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    env = {"DEBUG_PAGES": "false", "API_DOCS_REQUIRE_LOGIN": "true"}
    with seeded_stack(tmp_path_factory.mktemp("csp-e2e"), SEED, env=env) as (server, seeded):
        yield server, seeded


@pytest.fixture(scope="module")
def superuser_page(stack, chromium_browser):
    """One page logged in as seed_demo's superuser for the module (page_at: a violation left over fails too)."""
    server, seeded = stack
    with page_at(chromium_browser, 1280, 900) as page:
        log_in(page, server, "admin", seeded["logins"]["admin"])
        assert "/accounts/login/" not in page.url
        yield page


def assert_policy(response):
    """The response carries the enforced policy: scripts only from the site, nothing inline."""
    policy = response.headers.get("content-security-policy")
    assert policy, f"no Content-Security-Policy on {response.url}"
    directives = dict((part.strip().split(" ", 1) + [""])[:2] for part in policy.split(";"))
    assert directives["script-src"] == "'self'", policy
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'", policy
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy, policy


def visit(page, url: str):
    """Open ``url`` with no violation recorded before; its response."""
    csp_violations(page).clear()
    response = page.goto(url)
    page.wait_for_load_state("load")
    return response


@pytest.mark.parametrize("name", list(page_paths(dict.fromkeys(("plant", "rollout", "user"), 0) | {"devices": (0, 0)})))
def test_every_page_kind_runs_under_the_policy_without_a_violation(stack, superuser_page, name):
    server, seeded = stack
    page = superuser_page
    response = visit(page, server.url + page_paths(seeded)[name])
    assert response.status == (404 if name == "not_found" else 200), (name, response.status)
    assert_policy(response)
    if page.locator("#conn").count():  # a live page: its WebSocket (connect-src) is up and synced
        wait_live(page)
    flush_csp_reports(page.context)
    assert csp_violations(page) == [], name


def test_the_machine_page_switches_device_in_place_without_a_violation(stack, superuser_page):
    server, seeded = stack
    page, (first, second) = superuser_page, seeded["devices"]
    visit(page, f"{server.url}/devices/{first}/")
    wait_live(page)
    page.get_by_label("Device", exact=True).select_option(f"/devices/{second}/")  # htmx swaps the view
    expect(page).to_have_url(f"{server.url}/devices/{second}/")
    page.get_by_label("Device", exact=True).press("Enter")  # no inline onsubmit any more: the script stops it
    expect(page).to_have_url(f"{server.url}/devices/{second}/")
    flush_csp_reports(page.context)
    assert csp_violations(page) == []


@pytest.mark.parametrize("name", list(DOCS))
def test_api_docs_render_under_the_policy_after_the_login_they_require(stack, chromium_browser, name):
    server, seeded = stack
    with page_at(chromium_browser, 1440, 900) as page:  # no violation, on the login page either
        response = page.goto(server.url + DOCS[name])
        assert page.url.startswith(f"{server.url}/accounts/login/?next="), page.url  # API_DOCS_REQUIRE_LOGIN
        assert_policy(response)
        log_in_here(page, "admin", seeded["logins"]["admin"])
        expect(page).to_have_url(server.url + DOCS[name])
        # The schema is generated per request and the page parses all of it: bounds for a loaded machine.
        expect(page.locator(RENDERED[name]).first).to_be_visible(timeout=60_000)
        flush_csp_reports(page.context)
        assert csp_violations(page) == [], "\n".join(csp_violations(page))


def log_in_here(page, username: str, password: str):
    """Fill in the login form the page shows (it was sent there), as a person does."""
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


# What an injected fragment would try; each returns whether its code ran.
INJECTIONS = {
    "script-src-attr": """() => { const b = document.createElement("button");
        b.setAttribute("onclick", "window.__injected = 'handler'"); document.body.append(b); b.click();
        return window.__injected === "handler"; }""",
    "script-src-elem": """() => { const s = document.createElement("script");
        s.textContent = "window.__injected = 'script'"; document.body.append(s);
        return window.__injected === "script"; }""",
    "script-src-elem javascript:": """() => { const a = document.createElement("a");
        a.href = "javascript:window.__injected = 'link'"; document.body.append(a); a.click();
        return window.__injected === "link"; }""",
    "style-src-attr": """() => { const d = document.createElement("div");
        d.innerHTML = '<p id="injected-style" style="display: none">x</p>'; document.body.append(d);
        return getComputedStyle(document.getElementById("injected-style")).display === "none"; }""",
}


@pytest.mark.parametrize("directive", list(INJECTIONS))
def test_injected_inline_code_is_refused_and_reported(stack, superuser_page, directive):
    server, seeded = stack
    page = superuser_page
    visit(page, f"{server.url}/plants/{seeded['plant']}/alarms/")
    assert page.evaluate(INJECTIONS[directive]) is False, f"the injected {directive} ran"
    flush_csp_reports(page.context)
    expected = directive.split()[0]
    expect_violation = [text for text in csp_violations(page) if text.startswith(expected)]
    assert expect_violation, csp_violations(page)
    csp_violations(page).clear()  # expected here: the module's page must not fail for them


def test_page_at_fails_the_test_in_which_a_violation_happens(stack, chromium_browser):
    server, _seeded = stack
    failing = pytest.raises(AssertionError, match=re.escape("Content-Security-Policy violations:"))
    with failing as failed, page_at(chromium_browser, 800, 600) as page:
        page.goto(f"{server.url}/accounts/login/")
        assert page.evaluate(INJECTIONS["script-src-attr"]) is False
    assert "script-src-attr blocked inline" in str(failed.value)
