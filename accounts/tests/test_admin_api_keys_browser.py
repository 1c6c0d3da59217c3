"""A plant admin adds a service account and issues its key in the admin, in real Chromium; the key works."""

import httpx
import pytest

from accounts.roles import Role
from devices.tests.factories import PASSWORD, make_device, make_line, make_user
from tests.browser import chromium, log_in, page_at, require_chromium

playwright_sync = require_chromium()
expect = playwright_sync.expect


@pytest.fixture
def plant_with_admin(transactional_db, plant_a):
    make_device(make_line(plant_a, "Stamping"), "press-01")
    make_user("boss", plant=plant_a, role=Role.ADMIN)
    return plant_a


def test_admin_issues_a_key_once_that_reads_the_plant(live_server, plant_with_admin, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with chromium() as browser, page_at(browser, 1440, 900) as page:
        log_in(page, live_server, "boss", PASSWORD)
        page.goto(f"{live_server.url}/admin/accounts/serviceaccount/add/")
        page.get_by_label("Name").fill("sap-erp")
        page.get_by_label("Plant").select_option(label=str(plant_with_admin))
        page.get_by_label("Role").select_option("viewer")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator("#result_list")).to_contain_text("sap-erp")
        page.goto(f"{live_server.url}/admin/accounts/apikey/add/")
        page.get_by_label("Account").select_option(label="sap-erp")
        page.get_by_label("Name").fill("prod")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator(".errornote")).to_contain_text("Copy this key now")
        plain = page.locator("#issued-api-key code").inner_text()
        page.goto(f"{live_server.url}/admin/accounts/apikey/")
        expect(page.locator("#result_list")).to_contain_text("prod")
        assert plain not in page.content()
    response = httpx.get(f"{live_server.url}/api/v1/devices/", headers={"Authorization": f"Api-Key {plain}"})
    assert response.status_code == 200, response.text
    assert [row["uid"] for row in response.json()["results"]] == ["press-01"]
