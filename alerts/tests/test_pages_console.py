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


def test_console_offers_suppress_only_to_plant_admins(client_for, operator, plant_admin, plant_a):
    html = assert_status(client_for(operator).get(f"/plants/{plant_a.pk}/alarms/"), 200).content.decode()
    assert 'data-can-manage="false"' in html and '"canManage": false' in html
    html = assert_status(client_for(plant_admin).get(f"/plants/{plant_a.pk}/alarms/"), 200).content.decode()
    assert 'data-can-manage="true"' in html and '"canManage": true' in html


def test_shelve_dialog_is_bounded_by_the_longest_shelve_setting(client_for, operator, plant_a, settings):
    settings.ALARM_SHELVE_MAX_MINUTES = 45
    html = assert_status(client_for(operator).get(f"/plants/{plant_a.pk}/alarms/"), 200).content.decode()
    assert '<dialog id="shelve-dialog"' in html and 'id="shelve-reason"' in html
    assert 'max="45"' in html and "at most 45" in html and '"shelveMaxMinutes": 45' in html


def test_filters_offer_the_plants_lines_and_the_states_in_plain_words(client_for, viewer, plant_a, plant_b):
    press_line = make_line(plant_a, "Press line")
    make_line(plant_b, "Paint line")
    html = assert_status(client_for(viewer).get(f"/plants/{plant_a.pk}/alarms/"), 200).content.decode()
    assert f'<option value="{press_line.pk}">Press line</option>' in html and "Paint line" not in html
    assert '<option value="critical">Critical</option>' in html
    assert '<option value="active_unack">Active, not acknowledged</option>' in html
    assert '<option value="cleared_unack">Cleared, not acknowledged</option>' in html
    assert '<option value="true">Shelved only</option>' in html
