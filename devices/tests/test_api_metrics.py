"""/api/v1/metrics/: how metrics read (display name, unit, precision); read by members, changed by staff."""

import pytest

from conftest import assert_status
from devices.models import Metric
from devices.tests.factories import make_user
from devices.tests.test_ingest_store import msg, store

pytestmark = pytest.mark.django_db

URL = "/api/v1/metrics/"


@pytest.fixture
def metrics(presses, foreign):
    store(presses[0], msg(0, temperature=61.4, vibration=0.02))
    store(foreign, msg(0, reactor_flux=3.2))  # plant B's metric: not for plant A's users to see
    return {m.name: m for m in Metric.objects.all()}


@pytest.fixture
def staff(db):
    return make_user("staff", is_staff=True)


def snapshot() -> list[tuple]:
    return list(Metric.objects.order_by("pk").values_list("name", "display_name", "unit", "precision"))


def test_lists_the_metrics_of_the_users_plants_with_how_they_read(
    client_for, viewer, metrics, django_assert_max_num_queries
):
    client = client_for(viewer)
    with django_assert_max_num_queries(8):
        body = assert_status(client.get(URL), 200).json()
    assert [(r["name"], r["label"], r["unit"], r["precision"]) for r in body["results"]] == [
        ("temperature", "Temperature", "°C", 1),
        ("vibration", "Vibration", "mm/s", 3),
    ]


def test_answers_404_for_another_plants_metric_and_an_empty_list_for_an_outsider(client_for, viewer, outsider, metrics):
    assert_status(client_for(viewer).get(f"{URL}{metrics['reactor_flux'].pk}/"), 404)
    assert assert_status(client_for(outsider).get(URL), 200).json()["count"] == 0
    assert_status(client_for(None).get(URL), 401)


def test_staff_see_every_metric_and_change_how_one_reads(client_for, staff, metrics):
    client = client_for(staff)
    assert {r["name"] for r in assert_status(client.get(URL), 200).json()["results"]} == set(metrics)
    url = f"{URL}{metrics['vibration'].pk}/"

    body = assert_status(client.patch(url, {"display_name": "Spindle vibration", "precision": 4}), 200).json()

    assert (body["label"], body["unit"], body["precision"]) == ("Spindle vibration", "mm/s", 4)
    metrics["vibration"].refresh_from_db()
    assert (metrics["vibration"].display_name, metrics["vibration"].precision) == ("Spindle vibration", 4)


def test_refuses_changes_by_plant_members_even_plant_admins(client_for, operator, plant_admin, metrics):
    before = snapshot()
    for user in (operator, plant_admin):
        response = assert_status(client_for(user).patch(f"{URL}{metrics['vibration'].pk}/", {"unit": "g"}), 403)
        assert "Only staff" in response.json()["detail"]
    assert snapshot() == before


def test_rejects_a_precision_beyond_six_and_a_renamed_metric_without_writing(client_for, staff, metrics):
    client = client_for(staff)
    url = f"{URL}{metrics['vibration'].pk}/"
    before = snapshot()

    too_fine = assert_status(client.patch(url, {"precision": 9}), 400).json()
    renamed = assert_status(client.patch(url, {"name": "vib"}), 400).json()

    assert "precision" in too_fine["errors"] and "name" in renamed["errors"]
    assert snapshot() == before


def test_offers_neither_create_nor_delete(client_for, staff, metrics):
    client = client_for(staff)
    assert_status(client.post(URL, {"name": "oil_temp"}), 405)
    assert_status(client.delete(f"{URL}{metrics['vibration'].pk}/"), 405)
    assert Metric.objects.count() == len(metrics)
