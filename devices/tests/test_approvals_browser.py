"""The approvals page in real Chromium against a real Daphne, on a desktop (1440×900) and a phone
(390×844): a plant admin follows the badge to the devices waiting for approval, approves one, it
disappears and the badge drops; a device that asks while the page is open appears without a reload
(the plant's live stream). No console error, no sideways scroll.

Each size has its own plant (A and B of tests/e2e_seed.py), admin and approval key, so the two
tests share one server stack without seeing each other's requests.
"""

import httpx
import pytest

from tests.browser import log_in, page_at, require_chromium, wait_live
from tests.servers import seeded_stack

expect = require_chromium().expect

SEED = """
import json
from accounts.roles import Role
from devices.models import Plant
from devices.services.provisioning import provisioning_key_create
from devices.tests.factories import make_user
from tests.e2e_seed import seed
import contextlib, io
with contextlib.redirect_stdout(io.StringIO()):
    data = seed(devices=1, sensor=False)
keys = {}
for name in ("A", "B"):
    plant = Plant.objects.get(pk=data["plants"][name])
    make_user(f"admin_{name.lower()}", plant=plant, role=Role.ADMIN)
    keys[name] = provisioning_key_create(plant=plant, name=f"Approval key {name}", needs_approval=True)[1]
data["keys"] = keys
print(json.dumps(data))
"""
SIZES = {"A": (1440, 900), "B": (390, 844)}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with seeded_stack(tmp_path_factory.mktemp("approvals-e2e"), SEED) as (server, seeded):
        yield server, seeded


def ask(server, key: str, uid: str) -> None:
    """A device without a token asks to be registered with the plant's approval key: it waits."""
    body = {"uid": uid, "name": f"Sensor {uid}", "kind": "sensor", "model": "TH-20"}
    response = httpx.post(f"{server.url}/api/v1/device/provision/", json=body,
                          headers={"Authorization": f"Provision {key}"})  # fmt: skip
    assert response.status_code == 202, response.text


@pytest.mark.parametrize("plant", ["A", "B"], ids=["desktop-1440x900", "phone-390x844"])
def test_plant_admin_approves_a_waiting_device_and_sees_new_ones_arrive(stack, chromium_browser, plant):
    server, seeded = stack
    key, prefix = seeded["keys"][plant], plant.lower()
    ask(server, key, f"{prefix}-th-1")
    ask(server, key, f"{prefix}-th-2")
    width, height = SIZES[plant]
    with page_at(chromium_browser, width, height) as page:
        console_errors = []
        page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
        log_in(page, server, f"admin_{prefix}", seeded["password"])
        page.goto(f"{server.url}/plants/{seeded['plants'][plant]}/")
        badge = page.locator('[data-role="approvals-badge"]')
        expect(badge).to_have_text("2 waiting")
        page.get_by_role("link", name="Approvals").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("devices waiting for approval")
        wait_live(page)
        cards = page.locator(".approval")
        expect(cards).to_have_count(2)
        first = page.locator(f'.approval[data-uid="{prefix}-th-1"]')
        expect(first).to_contain_text("Approval key")
        expect(first).to_contain_text("127.0.0.1")

        page.get_by_role("button", name=f"Approve {prefix}-th-1").click()
        expect(page.locator(".messages")).to_contain_text(f"Device {prefix}-th-1 approved")
        expect(first).to_have_count(0)
        expect(cards).to_have_count(1)
        expect(badge).to_have_text("1 waiting")
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), "sideways scroll"

        # A device asking now shows up live, and the badge counts it.
        wait_live(page)
        ask(server, key, f"{prefix}-th-3")
        expect(page.locator(f'.approval[data-uid="{prefix}-th-3"]')).to_be_visible()
        expect(badge).to_have_text("2 waiting")

        page.get_by_role("button", name=f"Reject {prefix}-th-2").click()
        expect(page.locator(".messages")).to_contain_text(f"Device {prefix}-th-2 rejected")
        expect(cards).to_have_count(1)
        expect(badge).to_have_text("1 waiting")
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), "sideways scroll"
        assert not console_errors, console_errors

    # The approved device collects its token; the rejected one is refused.
    url, headers = f"{server.url}/api/v1/device/provision/", {"Authorization": f"Provision {key}"}
    body = {"uid": f"{prefix}-th-1", "name": "x", "kind": "sensor", "model": "TH-20"}
    collected = httpx.post(url, json=body, headers=headers)
    assert collected.status_code == 201 and collected.json()["token"], collected.text
    body["uid"] = f"{prefix}-th-2"
    refused = httpx.post(url, json=body, headers=headers)
    assert refused.status_code == 401, refused.text


def test_operator_has_no_badge_and_gets_403(stack, tab):
    server, seeded, page = *stack, tab
    log_in(page, server, "operator", seeded["password"])
    page.goto(f"{server.url}/plants/{seeded['plants']['A']}/")
    expect(page.get_by_role("link", name="Overview")).to_be_visible()
    expect(page.get_by_role("link", name="Approvals")).to_have_count(0)
    assert page.goto(f"{server.url}/plants/{seeded['plants']['A']}/approvals/").status == 403
