"""/api/v1/lines/: plant-scoped CRUD of production lines (CONTRACT.md "Management API")."""

import warnings

import pytest
from django.core.paginator import UnorderedObjectListWarning

from accounts.roles import Role
from accounts.services import member_set_role
from conftest import assert_status
from devices.models import Line
from devices.tests.factories import make_device, make_line, make_plant

pytestmark = pytest.mark.django_db

URL = "/api/v1/lines/"


@pytest.fixture
def line_a(plant_a):
    return make_line(plant_a, "Press line", position=1)


@pytest.fixture
def line_b(plant_b):
    return make_line(plant_b, "Foreign line")


def line_state() -> list[tuple]:
    """Every line as (id, plant, name, description, position): proves "nothing changed"."""
    return list(Line.objects.order_by("pk").values_list("pk", "plant_id", "name", "description", "position"))


def test_lists_only_plant_a_lines_when_viewer_lists(client_for, viewer, plant_a, line_a, line_b):
    make_device(line_a, "press-01")
    make_device(line_a, "press-02")
    make_device(line_b, "foreign-01")
    response = assert_status(client_for(viewer).get(URL), 200)
    body = response.json()
    assert body["count"] == 1
    assert [(row["id"], row["plant"], row["name"], row["device_count"]) for row in body["results"]] == [
        (line_a.pk, plant_a.pk, "Press line", 2)
    ]


def test_lists_every_plant_when_superuser_lists_and_filters_by_plant(client_for, superuser, plant_a, line_a, line_b):
    client = client_for(superuser)
    assert {row["id"] for row in assert_status(client.get(URL), 200).json()["results"]} == {line_a.pk, line_b.pk}
    filtered = assert_status(client.get(URL, {"plant": plant_a.pk}), 200).json()
    assert [row["id"] for row in filtered["results"]] == [line_a.pk]


def test_answers_same_404_when_filter_names_invisible_or_missing_plant(client_for, viewer, plant_b, line_b):
    client = client_for(viewer)
    invisible = assert_status(client.get(URL, {"plant": plant_b.pk}), 404).json()
    missing = assert_status(client.get(URL, {"plant": plant_b.pk + 1000}), 404).json()
    # The same answer for both: a filter must not reveal which plant ids exist elsewhere.
    assert invisible == missing
    assert "No such plant" in invisible["detail"]


def test_pages_lines_in_position_order_when_list_is_long(client_for, viewer, plant_a, line_a):
    make_line(plant_a, "Zeta", position=0)
    make_line(plant_a, "Alpha", position=2)
    client = client_for(viewer)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnorderedObjectListWarning)
        first = assert_status(client.get(URL, {"page_size": 2}), 200).json()
        second = assert_status(client.get(URL, {"page_size": 2, "page": 2}), 200).json()
    assert [row["name"] for row in first["results"] + second["results"]] == ["Zeta", "Press line", "Alpha"]


def test_finds_line_when_searching_by_name(client_for, viewer, plant_a, line_a):
    make_line(plant_a, "Paint shop")
    body = assert_status(client_for(viewer).get(URL, {"search": "pain"}), 200).json()
    assert [row["name"] for row in body["results"]] == ["Paint shop"]


def test_answers_200_when_viewer_reads_line_of_plant_a(client_for, viewer, line_a):
    body = assert_status(client_for(viewer).get(f"{URL}{line_a.pk}/"), 200).json()
    assert body["name"] == "Press line"
    assert body["device_count"] == 0


def test_answers_401_when_anonymous_lists_lines(client_for, line_a):
    response = assert_status(client_for(None).get(URL), 401)
    assert "credentials" in response.json()["detail"]


@pytest.mark.parametrize(
    ("method", "body"),
    [("get", None), ("patch", {"name": "Stolen"}), ("put", {"name": "Stolen"}), ("delete", None)],
)
def test_answers_404_when_outsider_touches_line_of_plant_a(client_for, outsider, line_a, method, body):
    before = line_state()
    response = assert_status(getattr(client_for(outsider), method)(f"{URL}{line_a.pk}/", body), 404)
    assert "detail" in response.json()
    assert line_state() == before


def test_answers_404_when_plant_admin_reads_line_of_plant_b(client_for, plant_admin, line_b):
    assert_status(client_for(plant_admin).get(f"{URL}{line_b.pk}/"), 404)


@pytest.mark.parametrize("persona", ["viewer", "operator"])
def test_answers_403_and_changes_nothing_when_non_admin_writes_line(request, client_for, plant_a, line_a, persona):
    client = client_for(request.getfixturevalue(persona))
    before = line_state()
    created = assert_status(client.post(URL, {"plant": plant_a.pk, "name": "New line"}), 403)
    assert "admin role" in created.json()["detail"]
    assert_status(client.patch(f"{URL}{line_a.pk}/", {"name": "Renamed"}), 403)
    assert_status(client.delete(f"{URL}{line_a.pk}/"), 403)
    assert line_state() == before


def test_creates_line_when_plant_admin_posts_contract_body(client_for, plant_admin, plant_a):
    response = assert_status(client_for(plant_admin).post(URL, {"plant": plant_a.pk, "name": "Assembly"}), 201)
    body = response.json()
    line = Line.objects.get(pk=body["id"])
    assert (line.plant_id, line.name) == (plant_a.pk, "Assembly")
    assert body["plant"] == plant_a.pk
    assert body["name"] == "Assembly"


def test_updates_line_when_plant_admin_patches(client_for, plant_admin, line_a):
    response = assert_status(
        client_for(plant_admin).patch(f"{URL}{line_a.pk}/", {"name": "Press line 2", "position": 5}), 200
    )
    assert response.json()["name"] == "Press line 2"
    line_a.refresh_from_db()
    assert (line_a.name, line_a.position) == ("Press line 2", 5)


def test_deletes_empty_line_when_plant_admin_deletes(client_for, plant_admin, line_a):
    assert_status(client_for(plant_admin).delete(f"{URL}{line_a.pk}/"), 204)
    assert not Line.objects.filter(pk=line_a.pk).exists()


def test_answers_409_and_keeps_line_when_it_still_has_devices(client_for, plant_admin, line_a):
    make_device(line_a, "press-07")
    response = assert_status(client_for(plant_admin).delete(f"{URL}{line_a.pk}/"), 409)
    assert "press-07" in response.json()["detail"]
    assert Line.objects.filter(pk=line_a.pk).exists()


def test_answers_400_does_not_exist_when_admin_creates_line_in_invisible_plant(client_for, plant_admin, plant_b):
    before = line_state()
    response = assert_status(client_for(plant_admin).post(URL, {"plant": plant_b.pk, "name": "Sneaky"}), 400)
    body = response.json()
    assert "does not exist" in str(body["errors"]["plant"])
    assert "Plant B" not in str(body)
    assert line_state() == before


def test_answers_403_when_admin_of_a_creates_line_in_plant_where_only_viewer(client_for, plant_admin, plant_b):
    member_set_role(plant=plant_b, user=plant_admin, role=Role.VIEWER)
    response = assert_status(client_for(plant_admin).post(URL, {"plant": plant_b.pk, "name": "Sneaky"}), 403)
    assert "Plant B" in response.json()["detail"]
    assert not Line.objects.filter(name="Sneaky").exists()


def test_creates_line_in_any_plant_when_superuser_posts(client_for, superuser, plant_b):
    body = assert_status(client_for(superuser).post(URL, {"plant": plant_b.pk, "name": "Root line"}), 201).json()
    assert Line.objects.get(pk=body["id"]).plant_id == plant_b.pk


def test_answers_400_and_creates_nothing_when_body_is_not_json(client_for, plant_admin, line_a):
    before = line_state()
    client = client_for(plant_admin)
    response = assert_status(client.post(URL, data='{"plant": 1, "name": ', content_type="application/json"), 400)
    assert "JSON parse error" in response.json()["detail"]
    patched = client.patch(f"{URL}{line_a.pk}/", data="not json", content_type="application/json")
    assert_status(patched, 400)
    assert line_state() == before


OMIT = object()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"plant": OMIT}, "plant"),
        ({"plant": "PLANT"}, "plant"),
        ({"plant": None}, "plant"),
        ({"name": OMIT}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": ["Press"]}, "name"),
        ({"position": -1}, "position"),
        ({"position": "first"}, "position"),
        ({"colour": "red"}, "colour"),
        ({"device_count": 3}, "device_count"),
    ],
)
def test_answers_400_naming_field_when_create_input_is_invalid(client_for, plant_admin, plant_a, change, field):
    body = {
        key: value for key, value in {"plant": plant_a.pk, "name": "New line", **change}.items() if value is not OMIT
    }
    response = assert_status(client_for(plant_admin).post(URL, body, format="json"), 400)
    assert field in response.json()["errors"]
    assert field in response.json()["detail"]
    assert not Line.objects.exists()


def test_answers_400_naming_name_when_line_name_is_taken_in_plant(client_for, plant_admin, plant_a, line_a):
    before = line_state()
    response = assert_status(client_for(plant_admin).post(URL, {"plant": plant_a.pk, "name": "Press line"}), 400)
    assert "already has a line named 'Press line'" in response.json()["errors"]["name"][0]
    assert line_state() == before


def test_answers_400_naming_name_when_rename_collides_with_another_line(client_for, plant_admin, plant_a, line_a):
    other = make_line(plant_a, "Paint shop")
    before = line_state()
    response = assert_status(client_for(plant_admin).patch(f"{URL}{other.pk}/", {"name": "Press line"}), 400)
    assert "already has a line named 'Press line'" in response.json()["errors"]["name"][0]
    assert line_state() == before


def test_allows_same_line_name_when_plants_differ(client_for, superuser, plant_b, line_a):
    body = assert_status(client_for(superuser).post(URL, {"plant": plant_b.pk, "name": "Press line"}), 201).json()
    assert Line.objects.filter(name="Press line").count() == 2
    assert body["plant"] == plant_b.pk


def test_answers_400_and_keeps_plant_when_patch_tries_to_move_line(client_for, superuser, line_a, plant_b):
    response = assert_status(client_for(superuser).patch(f"{URL}{line_a.pk}/", {"plant": plant_b.pk}), 400)
    assert "plant" in response.json()["errors"]
    line_a.refresh_from_db()
    assert line_a.plant.name == "Plant A"


@pytest.mark.parametrize("rows", [3, 30])
def test_keeps_list_query_count_constant_when_lines_grow(
    client_for, plant_admin, plant_a, rows, django_assert_max_num_queries
):
    other = make_plant()
    for index in range(rows):
        line = make_line(plant_a, f"Line {index:02d}")
        make_device(line, f"dev-{index:03d}")
        make_line(other, f"Other {index:02d}")
    client = client_for(plant_admin)
    client.get(URL)  # warm per-process caches (content types): count only what each request costs
    with django_assert_max_num_queries(5):
        response = assert_status(client.get(URL), 200)
    assert response.json()["count"] == rows
    assert {row["device_count"] for row in response.json()["results"]} == {1}
