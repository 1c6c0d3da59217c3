"""The devices' pages as served (overview, device detail): scoping (404 outside your plants), what they
show, bad query input."""

import pytest
from django.utils import timezone

from conftest import assert_status
from devices.services.ingest import IngestItem, telemetry_store
from devices.services.telemetry_payload import Message
from devices.tests.factories import make_device, make_group, make_line, make_token

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cleared_cache")]


@pytest.fixture
def presses(plant_a):
    press, assembly = make_line(plant_a, "Press line"), make_line(plant_a, "Assembly line")
    return [make_device(press, "press-01"), make_device(assembly, "robot-02")]


@pytest.fixture
def paint_b(plant_b):
    return make_device(make_line(plant_b, "Paint line"), "paint-01")


def store(device, **values):
    now = timezone.now()
    telemetry_store(
        [IngestItem(device=device, messages=[Message(ts=now, values=values, state="running")])], received_at=now
    )


def test_redirects_anonymous_user_to_login_from_every_page(client, plant_a, presses):
    for url in (f"/plants/{plant_a.pk}/", f"/devices/{presses[0].pk}/"):
        response = assert_status(client.get(url), 302)
        assert response["Location"].startswith("/accounts/login/?next=")


def test_answers_404_for_pages_of_a_plant_that_is_not_yours(client_for, viewer, outsider, plant_b, paint_b):
    for user in (viewer, outsider):
        client = client_for(user)
        for url in (f"/plants/{plant_b.pk}/", f"/devices/{paint_b.pk}/"):
            assert_status(client.get(url), 404)


def test_overview_shows_a_tile_per_device_with_state_and_key_metric(client_for, viewer, plant_a, presses, paint_b):
    store(presses[0], temperature=71.25, count_total=3)  # shows as 71.3: half up, as the browser rounds
    html = assert_status(client_for(viewer).get(f"/plants/{plant_a.pk}/"), 200).content.decode()
    assert html.count('class="tile ') == 2
    assert "press-01" in html and "robot-02" in html and "paint-01" not in html
    assert 'class="tile state-running"' in html
    assert ">Temperature<" in html and ">71.3<" in html and ">°C<" in html, "display name, precision 1, unit"
    assert "state-offline" in html, "the device that never reported is offline"
    assert 'id="conn"' in html and 'src="/static/devices/overview.js"' in html


def test_overview_filters_by_line_and_group(client_for, viewer, plant_a, presses):
    client = client_for(viewer)
    line = presses[1].line
    html = assert_status(client.get(f"/plants/{plant_a.pk}/?line={line.pk}"), 200).content.decode()
    assert "robot-02" in html and "press-01" not in html
    group = make_group(plant_a, "Presses", devices=[presses[0]])
    html = assert_status(client.get(f"/plants/{plant_a.pk}/?group={group.pk}"), 200).content.decode()
    assert "press-01" in html and "robot-02" not in html


@pytest.mark.parametrize("query", ["?line=abc", "?group=%00", "?line=99999999999999999999999", "?line=-1&group="])
def test_ignores_or_empties_on_malformed_filters_without_error(client_for, viewer, plant_a, presses, query):
    assert_status(client_for(viewer).get(f"/plants/{plant_a.pk}/{query}"), 200)


def test_device_page_shows_values_facts_tokens_and_timeline(client_for, viewer, presses):
    device = presses[0]
    make_token(device, name="line-plc")
    store(device, temperature=70.5)
    html = assert_status(client_for(viewer).get(f"/devices/{device.pk}/"), 200).content.decode()
    assert 'data-metric="temperature"' in html and ">70.5 °C<" in html
    assert "HP-400" in html and "1.0.0" in html and "line-plc" in html
    assert 'class="seg state-running"' in html
    assert 'data-range="24h"' in html and 'id="custom-range"' in html


def test_superuser_sees_every_plant(client_for, superuser, plant_b, paint_b):
    assert_status(client_for(superuser).get(f"/devices/{paint_b.pk}/"), 200)
