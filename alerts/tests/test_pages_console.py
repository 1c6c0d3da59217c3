"""The alarm console page as served: login, scoping (404 outside your plants), operate buttons by role."""

import pytest

from conftest import assert_status
from devices.tests.factories import make_device, make_line

pytestmark = pytest.mark.django_db


def test_redirects_anonymous_user_to_login(client, plant_a):
    response = assert_status(client.get(f"/plants/{plant_a.pk}/alarms/"), 302)
    assert response["Location"].startswith("/accounts/login/?next=")


def test_answers_404_for_the_console_of_a_plant_that_is_not_yours(client_for, viewer, outsider, plant_b):
    for user in (viewer, outsider):
        assert_status(client_for(user).get(f"/plants/{plant_b.pk}/alarms/"), 404)


def test_alarm_console_frame_shows_operate_buttons_only_to_operators(client_for, viewer, operator, plant_a):
    html = assert_status(client_for(viewer).get(f"/plants/{plant_a.pk}/alarms/"), 200).content.decode()
    assert 'data-can-operate="false"' in html and 'id="alarm-rows"' in html
    html = assert_status(client_for(operator).get(f"/plants/{plant_a.pk}/alarms/"), 200).content.decode()
    assert 'data-can-operate="true"' in html


def test_console_names_the_plants_devices_for_its_script(client_for, viewer, plant_a, plant_b):
    press = make_device(make_line(plant_a, "Press line"), "press-01")
    make_device(make_line(plant_b, "Paint line"), "paint-01")
    html = assert_status(client_for(viewer).get(f"/plants/{plant_a.pk}/alarms/"), 200).content.decode()
    assert f'"{press.pk}": "press-01"' in html and "paint-01" not in html
    assert 'id="conn"' in html and 'src="/static/alerts/console.js"' in html
