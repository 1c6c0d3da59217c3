"""Dead letters: read-only admin pages scoped to the plants a user administers, and their retention."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from conftest import assert_status
from devices.models import DeadLetter
from devices.services.dead_letters import dead_letters_purge
from devices.tests.factories import make_device, make_line

pytestmark = pytest.mark.django_db

URL = "/admin/devices/deadletter/"


def letter(uid: str, device=None, *, reason: str = "values.temperature: Must be a finite number.", age=timedelta(0)):
    return DeadLetter.objects.create(
        received_at=timezone.now() - age,
        transport="mqtt",
        topic=f"factory/devices/{uid}/telemetry",
        device_uid=uid,
        device=device,
        payload='{"values": {"temperature": "hot"}}',
        reason=reason,
    )


@pytest.fixture
def letters(plant_a, plant_b):
    device_a = make_device(make_line(plant_a, "alpha-line"), uid="alpha-press")
    device_b = make_device(make_line(plant_b, "bravo-line"), uid="bravo-press")
    return {
        "a": letter("alpha-press", device_a),
        "b": letter("bravo-press", device_b),
        "unknown": letter("ghost-press", reason="topic: unknown device uid 'ghost-press'."),
    }


def client_for_user(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def html(response) -> str:
    return response.content.decode()


def test_lists_only_plant_a_dead_letters_when_user_is_plant_admin(plant_admin, letters):
    body = html(assert_status(client_for_user(plant_admin).get(URL), 200))
    assert "alpha-press" in body and "values.temperature: Must be a finite number." in body
    for hidden in ("bravo-press", "ghost-press", "Plant B"):  # rows and filter sidebar alike
        assert hidden not in body, f"{hidden!r} leaked into the dead-letter list"


def test_lists_unknown_device_dead_letters_too_when_user_is_superuser(superuser, letters):
    body = html(assert_status(client_for_user(superuser).get(URL), 200))
    assert all(uid in body for uid in ("alpha-press", "bravo-press", "ghost-press"))
    body = html(assert_status(client_for_user(superuser).get(URL, {"device__isempty": "1"}), 200))
    assert "ghost-press" in body and "alpha-press" not in body


def test_finds_dead_letters_by_reason_when_searching(superuser, letters):
    body = html(assert_status(client_for_user(superuser).get(URL, {"q": "unknown device"}), 200))
    assert "ghost-press" in body and "alpha-press" not in body


def test_shortens_long_reasons_in_the_list(superuser, plant_a):
    letter("long-press", reason="x" * 500)
    body = html(assert_status(client_for_user(superuser).get(URL), 200))
    assert "x" * 119 + "…" in body and "x" * 120 not in body


@pytest.mark.parametrize("key", ["b", "unknown"])
def test_hides_dead_letter_when_plant_admin_opens_one_outside_their_plants(plant_admin, letters, key):
    response = client_for_user(plant_admin).get(f"{URL}{letters[key].pk}/change/", follow=True)
    body = html(assert_status(response, 200))
    assert response.redirect_chain[-1][0] == "/admin/"
    assert letters[key].device_uid not in body


def test_shows_plant_a_dead_letter_read_only_with_its_payload(plant_admin, letters):
    url = f"{URL}{letters['a'].pk}/change/"
    client = client_for_user(plant_admin)
    body = html(assert_status(client.get(url), 200))
    assert "{&quot;values&quot;: {&quot;temperature&quot;: &quot;hot&quot;}}" in body
    assert 'name="_save"' not in body and "<textarea" not in body
    assert_status(client.post(url, {"reason": "edited"}), 403)
    letters["a"].refresh_from_db()
    assert letters["a"].reason == "values.temperature: Must be a finite number."


@pytest.mark.parametrize("user", ["plant_admin", "superuser"])
def test_refuses_adding_and_deleting_dead_letters(request, letters, user):
    client = client_for_user(request.getfixturevalue(user))
    assert_status(client.get(f"{URL}add/"), 403)
    assert_status(client.post(f"{URL}{letters['a'].pk}/delete/", {"post": "yes"}), 403)
    assert DeadLetter.objects.filter(pk=letters["a"].pk).exists()


def test_keeps_dead_letters_from_operator_who_has_no_admin_access(operator, letters):
    response = assert_status(client_for_user(operator).get(URL), 302)
    assert response["Location"].startswith("/admin/login/")


def test_purge_deletes_only_dead_letters_older_than_the_retention(settings):
    settings.DEAD_LETTER_RETENTION_DAYS = 14
    now = timezone.now()
    old = [letter(f"old-{i}", age=timedelta(days=14, seconds=1 + i)) for i in range(3)]
    kept = letter("recent", age=timedelta(days=13, hours=23))
    assert dead_letters_purge(now=now, batch=2) == 3
    assert list(DeadLetter.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not DeadLetter.objects.filter(pk__in=[row.pk for row in old]).exists()
    assert dead_letters_purge(now=now) == 0  # idempotent
    assert dead_letters_purge(now=now + timedelta(days=1)) == 1


def test_lists_dead_letters_in_a_fixed_number_of_queries(plant_admin, letters, django_assert_max_num_queries):
    device = letters["a"].device
    for i in range(30):
        letter(f"alpha-press-{i}", device)
    client = client_for_user(plant_admin)
    with django_assert_max_num_queries(13):  # session, user, scoping, counts, filters: not per row
        body = html(assert_status(client.get(URL), 200))
    assert "alpha-press-29" in body
