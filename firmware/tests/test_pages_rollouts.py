"""The rollouts board as served: login, scoping (404 outside your plants), the snapshots it renders and
answers as JSON (the page's catch-up), operate rights by role."""

import pytest

from conftest import assert_status
from firmware.tests.factories import make_image, make_rollout

pytestmark = pytest.mark.django_db


@pytest.fixture
def rollout(plant_a, fleet):
    return make_rollout(plant_a, make_image(plant_a, "2.0.0"), name="Presses to 2.0.0")


def test_redirects_anonymous_user_to_login(client, plant_a):
    response = assert_status(client.get(f"/plants/{plant_a.pk}/rollouts/"), 302)
    assert response["Location"].startswith("/accounts/login/?next=")


def test_answers_404_for_the_board_of_a_plant_that_is_not_yours(client_for, viewer, outsider, plant_b):
    for user in (viewer, outsider):
        client = client_for(user)
        assert_status(client.get(f"/plants/{plant_b.pk}/rollouts/"), 404)
        assert_status(client.get(f"/plants/{plant_b.pk}/rollouts/", HTTP_ACCEPT="application/json"), 404)


def test_board_shows_each_rollout_and_operate_rights_by_role(client_for, viewer, operator, plant_a, rollout):
    html = assert_status(client_for(viewer).get(f"/plants/{plant_a.pk}/rollouts/"), 200).content.decode()
    assert f'id="rollout-{rollout.pk}"' in html and "Presses to 2.0.0" in html
    assert 'data-can-operate="false"' in html and 'src="/static/firmware/rollouts.js"' in html
    html = assert_status(client_for(operator).get(f"/plants/{plant_a.pk}/rollouts/"), 200).content.decode()
    assert 'data-can-operate="true"' in html


def test_answers_the_snapshots_as_json_for_the_catch_up(client_for, viewer, plant_a, rollout):
    client = client_for(viewer)
    body = assert_status(client.get(f"/plants/{plant_a.pk}/rollouts/", HTTP_ACCEPT="application/json"), 200).json()
    assert [(r["rollout_id"], r["name"], r["version"]) for r in body["rollouts"]] == [
        (rollout.pk, "Presses to 2.0.0", "2.0.0")
    ]


def test_board_says_so_when_the_plant_has_no_rollouts(client_for, viewer, plant_a):
    html = assert_status(client_for(viewer).get(f"/plants/{plant_a.pk}/rollouts/"), 200).content.decode()
    assert 'id="no-rollouts"' in html


def test_empty_board_points_to_the_real_way_to_start_a_rollout(client_for, viewer, plant_admin, plant_a):
    """It said "create one in the API or the admin", but the admin has no Add button for rollouts:
    it now names the image upload (linked for plant admins, where it exists) and the API calls."""
    admin_page = assert_status(client_for(plant_admin).get(f"/plants/{plant_a.pk}/rollouts/"), 200).content.decode()
    assert "or the admin" not in admin_page
    assert 'href="/admin/firmware/firmwareimage/add/"' in admin_page
    assert "POST /api/v1/rollouts/" in admin_page and 'href="/api/docs/"' in admin_page
    assert client_for(plant_admin).get("/admin/firmware/firmwareimage/add/").status_code == 200
    assert client_for(plant_admin).get("/admin/firmware/rollout/add/").status_code == 403  # no Add in the admin
    viewer_page = assert_status(client_for(viewer).get(f"/plants/{plant_a.pk}/rollouts/"), 200).content.decode()
    assert "/admin/firmware/firmwareimage/add/" not in viewer_page and "POST /api/v1/rollouts/" in viewer_page
