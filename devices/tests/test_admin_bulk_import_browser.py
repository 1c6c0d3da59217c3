"""The device admin's import in real Chromium: choose a file, preview the rows, apply, download the tokens."""

import csv
import io
from pathlib import Path

import pytest

from accounts.roles import Role
from devices.models import Device, DeviceToken
from devices.tests.factories import PASSWORD, make_device, make_line, make_user
from tests.browser import chromium, log_in, page_at, require_chromium

require_chromium()

CSV = (
    "uid,name,kind,plant,line,model\n"
    "press-04,Press 4,machine,Plant A,Press line,HX-200\n"
    "press-01,Press one renamed,,,Press line,\n"
)


@pytest.fixture
def fleet(transactional_db, plant_a):
    line = make_line(plant_a, "Press line")
    make_device(line, "press-01")
    make_user("boss", plant=plant_a, role=Role.ADMIN)


def test_import_previews_then_applies_and_downloads_the_new_tokens(live_server, fleet, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with chromium() as browser, page_at(browser, 1280, 900) as tab:
        check_import(live_server, tab)


def check_import(live_server, tab):
    log_in(tab, live_server, "boss", PASSWORD)
    tab.goto(f"{live_server.url}/admin/devices/device/")
    tab.get_by_role("link", name="Import devices (CSV, XLSX)").click()
    tab.get_by_label("File").set_input_files({"name": "devices.csv", "mimeType": "text/csv", "buffer": CSV.encode()})
    tab.get_by_label("Issue a token for each new device").check()
    tab.get_by_role("button", name="Preview").click()

    rows = tab.locator("#import-preview tbody tr")
    assert [rows.nth(i).locator("td").nth(2).inner_text() for i in range(rows.count())] == ["create", "update"]
    assert not Device.objects.filter(uid="press-04").exists()
    with tab.expect_download() as download_info:
        tab.get_by_role("button", name="Apply the import").click()

    download = download_info.value
    assert download.suggested_filename == "device-tokens.csv"
    [entry] = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
    assert entry["uid"] == "press-04" and entry["token"].count(".") == 1
    assert DeviceToken.objects.filter(device__uid="press-04").count() == 1
    assert Device.objects.get(uid="press-01").name == "Press one renamed"
