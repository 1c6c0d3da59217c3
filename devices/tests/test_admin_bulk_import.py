"""The device admin's import (preview, then all or nothing, tokens offered once) and export actions."""

import csv
import io
import re

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from conftest import assert_status
from devices.models import Device, DeviceToken, TelemetryReading
from devices.services.bulk import COLUMNS
from devices.tests.test_api_bulk_import import csv_rows, state
from devices.tests.test_ingest_payload import post as send_telemetry

pytestmark = pytest.mark.django_db

IMPORT_URL = "/admin/devices/device/import/"
DEVICES_URL = "/admin/devices/device/"
GOOD = ("press-04,Press 4,machine,Plant A,Press line,HX-200,2.5,30,", "press-01,Press one renamed,,,,,,,")


def upload(text: str, name: str = "devices.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="text/csv")


def preview(client, text: str, **fields):
    return client.post(IMPORT_URL, {"file": upload(text), "token_name": "import", "preview": "Preview", **fields})


def hidden(body: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', body).group(1)


def apply(client, previewed, **fields):
    """POST the preview page's form back with its "Apply" button, as the browser does."""
    body = previewed.content.decode()
    data = {"content": hidden(body, "content"), "file_name": hidden(body, "file_name"), "token_name": "import"}
    return client.post(IMPORT_URL, {**data, "apply": "Apply the import", **fields})


def preview_rows(body: str) -> list[tuple[str, str, str]]:
    table = re.search(r'<table id="import-preview">(.*?)</table>', body, re.S).group(1)
    cells = re.findall(r"<tr class=\"[a-z]+\"><td>(\d+)</td><td>([^<]*)</td><td>([a-z]+)</td>", table)
    return [(uid, action, row) for row, uid, action in cells]


def test_the_changelist_links_to_the_import_page(plant_admin_client, presses):
    body = assert_status(plant_admin_client.get(DEVICES_URL), 200).content.decode()

    assert f'href="{IMPORT_URL}"' in body
    assert "Choose a CSV or XLSX" not in assert_status(plant_admin_client.get(IMPORT_URL), 200).content.decode()


def test_preview_shows_each_row_and_changes_nothing_then_apply_imports(plant_admin_client, presses):
    before = state()

    previewed = assert_status(preview(plant_admin_client, csv_rows(*GOOD)), 200)

    assert preview_rows(previewed.content.decode()) == [("press-04", "create", "1"), ("press-01", "update", "2")]
    assert "Apply the import" in previewed.content.decode()
    assert state() == before
    applied = apply(plant_admin_client, previewed)
    assert applied.status_code == 302 and applied["Location"] == DEVICES_URL
    assert Device.objects.get(uid="press-04").model == "HX-200"
    assert Device.objects.get(uid="press-01").name == "Press one renamed"
    changelist = plant_admin_client.get(DEVICES_URL).content.decode()
    assert "Imported: 1 created, 1 updated, 0 unchanged." in changelist


def test_one_bad_row_or_another_plants_line_applies_nothing_and_says_which(plant_admin_client, presses, foreign):
    before = state()
    text = csv_rows(*GOOD, "press-05,Five,machine,Plant A,Foreign line,,,,", "press-06,Six,robot,Plant A,,,,,")

    previewed = assert_status(preview(plant_admin_client, text), 200)

    body = previewed.content.decode()
    assert [action for _, action, _ in preview_rows(body)] == ["create", "update", "error", "error"]
    assert "No line &#x27;Foreign line&#x27; in the plants you administer" in body
    assert "Apply the import" not in body
    # Forcing the apply anyway (an old preview, a crafted POST) is checked again: nothing changes.
    forced = assert_status(apply(plant_admin_client, previewed), 200)
    assert "Nothing was imported: fix the rows marked below." in forced.content.decode()
    assert state() == before


def test_tokens_are_offered_once_as_a_csv_download_and_authenticate(plant_admin_client, presses):
    previewed = preview(plant_admin_client, csv_rows(*GOOD), issue_tokens="on")

    download = assert_status(apply(plant_admin_client, previewed, issue_tokens="on"), 200)

    assert download["Content-Type"].startswith("text/csv")
    assert download["Content-Disposition"] == 'attachment; filename="device-tokens.csv"'
    [entry] = list(csv.DictReader(io.StringIO(download.content.decode())))  # only the created device
    assert entry["uid"] == "press-04"
    stored = DeviceToken.objects.get(device__uid="press-04", name="import")
    assert entry["token"] not in (stored.key_hash, stored.prefix)
    assert_status(send_telemetry(Client(), entry["token"], {"values": {"rpm": 1200}}), 202)
    assert TelemetryReading.objects.filter(device__uid="press-04").count() == 1
    # Offered once: no page shows it again (the device, its tokens, the import page).
    for url in (f"{DEVICES_URL}{stored.device_id}/change/", "/admin/devices/devicetoken/", IMPORT_URL):
        assert entry["token"] not in plant_admin_client.get(url).content.decode()


def test_export_actions_give_the_selected_devices_of_the_users_plants(plant_admin_client, presses, foreign):
    selected = [foreign.pk, presses[0].pk]
    data = {"action": "export_xlsx", "_selected_action": selected, "index": "0", "select_across": "1"}

    response = assert_status(plant_admin_client.post(DEVICES_URL, data), 200)

    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    assert [row[0] for row in sheet.iter_rows(min_row=2, values_only=True)] == ["press-01", "press-02", "press-03"]
    data |= {"action": "export_csv", "select_across": "0", "_selected_action": [presses[1].pk]}
    text = assert_status(plant_admin_client.post(DEVICES_URL, data), 200).content.decode()
    assert text.splitlines()[0] == ",".join(COLUMNS)
    assert [line.split(",")[0] for line in text.splitlines()] == ["uid", "press-02"]


@pytest.mark.parametrize("persona", ["viewer", "operator", "outsider"])
def test_only_plant_admins_reach_the_import_page(client_for, persona, request, presses):
    client = Client()
    client.force_login(request.getfixturevalue(persona))
    before = state()

    assert client.get(IMPORT_URL).status_code in (302, 403)
    assert preview(client, csv_rows(*GOOD)).status_code in (302, 403)
    assert client.post(IMPORT_URL, {"file": upload(csv_rows(*GOOD)), "apply": "1"}).status_code in (302, 403)
    assert state() == before
