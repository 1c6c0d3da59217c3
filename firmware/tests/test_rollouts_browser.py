"""The rollouts page in real Chromium (Playwright) against a real Daphne: an operator watches a
rollout progress as devices report, sees the failing device and the auto-pause, and resumes it.

The tests share one server stack (tests/servers.py) and Chromium (tests/browser.py); the devices
that report are owned by one test (``own_device``, tests/shared_stack.py).
"""

import httpx
import pytest

from tests.browser import log_in, require_chromium, wait_live
from tests.servers import seeded_stack

expect = require_chromium().expect

SEED = """
import json
from devices.models import Device
from tests.e2e_seed import seed
from firmware.services.rollouts import rollout_start
from firmware.tests.factories import make_image, make_rollout
data = seed(devices=3, sensor=False)
plant = Device.objects.get(uid="press-001").plant
Device.objects.filter(plant=plant).update(model="HP-400", firmware_version="1.0.0")
rollout = make_rollout(plant, make_image(plant, "2.0.0"), name="Presses to 2.0.0", error_threshold=30)
rollout_start(rollout=rollout)
data["rollout"] = rollout.pk
data["updates"] = {t.device.uid: t.pk for t in rollout.targets.select_related("device")}
print(json.dumps(data))
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with seeded_stack(tmp_path_factory.mktemp("rollouts-e2e"), SEED) as (server, seeded):
        yield server, seeded


def report(server, seeded, device: dict, status: str, detail: str = ""):
    """``device`` (one the test owns) reports the status of its update."""
    body = {"update_id": seeded["updates"][device["uid"]], "status": status, "detail": detail}
    token = device["token"]
    response = httpx.post(f"{server.url}/api/v1/device/firmware/status/", json=body,
                          headers={"Authorization": f"Device {token}"})  # fmt: skip
    assert response.status_code == 200, response.text


def test_operator_watches_progress_a_failure_pauses_and_resume_continues(stack, tab, own_device):
    server, seeded, page = *stack, tab
    first, second, third = (own_device(uid) for uid in ("press-001", "press-002", "press-003"))
    log_in(page, server, "operator", seeded["password"])
    page.get_by_role("link", name="Rollouts").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("firmware rollouts")
    wait_live(page)
    card = page.locator(f"#rollout-{seeded['rollout']}")
    bar = card.get_by_role("progressbar", name="Stage 1")
    expect(bar).to_have_attribute("aria-valuenow", "0")
    expect(card.locator('[data-role="state"]')).to_have_text("running")

    report(server, seeded, first, "downloading")
    expect(card.locator('[data-status="downloading"] dd')).to_have_text("1")
    report(server, seeded, first, "succeeded", "booted 2.0.0")
    expect(card.locator('[data-role="stage-text"]')).to_have_text("1/3 ok, 0 failed")
    expect(bar).to_have_attribute("aria-valuenow", "1")

    # One failure of three is above the 30 % error threshold: the rollout pauses itself.
    report(server, seeded, second, "failed", "flash write error at 0x4000")
    expect(card.locator('[data-role="failing"]')).to_contain_text("flash write error at 0x4000")
    expect(card.locator('[data-role="state"]')).to_have_text("paused")
    expect(card.locator(".pause-reason")).to_contain_text("1 of 3 devices failed")

    # Keyboard only: focus Resume and press Enter (the REST action, with CSRF).
    resume = card.get_by_role("button", name="Resume")
    resume.focus()
    page.keyboard.press("Enter")
    expect(card.locator('[data-role="state"]')).to_have_text("running")
    card.locator("summary").click()
    expect(card.locator('[data-role="audit"]')).to_contain_text("resumed")
    expect(card.locator('[data-role="audit"]')).to_contain_text("operator")

    report(server, seeded, third, "succeeded")
    expect(card.locator('[data-role="state"]')).to_have_text("completed")
    expect(bar).to_have_attribute("aria-valuenow", "3")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1024


def test_plant_b_user_gets_404_for_plant_a_rollouts(stack, tab):
    server, seeded, page = *stack, tab
    log_in(page, server, "viewer_b", seeded["password"])
    assert page.goto(f"{server.url}/plants/{seeded['plants']['A']}/rollouts/").status == 404
    page.goto(f"{server.url}/plants/{seeded['plants']['B']}/rollouts/")
    expect(page.locator("#no-rollouts")).to_be_visible()
    assert "Presses to 2.0.0" not in page.content()
