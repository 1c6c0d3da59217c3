import pytest

from conftest import assert_status
from devices.models import Plant
from devices.tests.factories import make_line, make_plant

pytestmark = pytest.mark.django_db


def test_lists_only_plant_a_when_user_has_a_role_there(client_for, viewer, plant_a, plant_b):
    response = assert_status(client_for(viewer).get("/api/v1/plants/"), 200)
    assert [p["name"] for p in response.data["results"]] == ["Plant A"]
    assert response.data["results"][0]["my_role"] == "viewer"


def test_answers_404_when_outsider_reads_a_plant(client_for, outsider, plant_a):
    assert_status(client_for(outsider).get(f"/api/v1/plants/{plant_a.pk}/"), 404)


def test_answers_403_when_viewer_renames_plant(client_for, viewer, plant_a):
    response = assert_status(client_for(viewer).patch(f"/api/v1/plants/{plant_a.pk}/", {"name": "X"}), 403)
    assert "admin role" in response.data["detail"]
    plant_a.refresh_from_db()
    assert plant_a.name == "Plant A"


def test_plant_admin_renames_plant(client_for, plant_admin, plant_a):
    assert_status(client_for(plant_admin).patch(f"/api/v1/plants/{plant_a.pk}/", {"name": "Plant A1"}), 200)
    plant_a.refresh_from_db()
    assert plant_a.name == "Plant A1"


def test_superuser_creates_plant_with_role_groups(client_for, superuser):
    response = assert_status(
        client_for(superuser).post("/api/v1/plants/", {"name": "Werk Süd", "time_zone": "Europe/Vienna"}), 201
    )
    plant = Plant.objects.get(pk=response.data["id"])
    assert sorted(plant.roles.values_list("role", flat=True)) == ["admin", "operator", "viewer"]


def test_rejects_unknown_time_zone_and_unknown_field(client_for, superuser):
    response = assert_status(
        client_for(superuser).post("/api/v1/plants/", {"name": "P", "time_zone": "Mars/Olympus", "colour": "red"}), 400
    )
    assert set(response.data["errors"]) == {"colour"}
    response = assert_status(
        client_for(superuser).post("/api/v1/plants/", {"name": "P", "time_zone": "Mars/Olympus"}), 400
    )
    assert "IANA" in str(response.data["errors"]["time_zone"])
    assert not Plant.objects.filter(name="P").exists()


def test_refuses_plant_creation_by_plant_admin(client_for, plant_admin):
    assert_status(client_for(plant_admin).post("/api/v1/plants/", {"name": "Rogue", "time_zone": "UTC"}), 403)
    assert not Plant.objects.filter(name="Rogue").exists()


def test_answers_409_when_deleting_plant_with_lines(client_for, superuser, plant_a):
    make_line(plant_a, "Press line")
    response = assert_status(client_for(superuser).delete(f"/api/v1/plants/{plant_a.pk}/"), 409)
    assert "Press line" in response.data["detail"]
    assert Plant.objects.filter(pk=plant_a.pk).exists()


def test_list_query_count_stays_constant(client_for, superuser, django_assert_max_num_queries):
    for _ in range(3):
        make_plant()
    client = client_for(superuser)
    with django_assert_max_num_queries(6):
        client.get("/api/v1/plants/")
    for _ in range(20):
        make_plant()
    with django_assert_max_num_queries(6):
        response = client.get("/api/v1/plants/")
    assert response.data["count"] == 23
