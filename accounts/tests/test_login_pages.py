"""The browser side: session login and logout pages, and the home page listing your plants."""

import pytest
from django.test import Client

from accounts.services import member_set_role
from conftest import assert_status
from devices.tests.factories import PASSWORD, make_device, make_line, make_plant, make_user

pytestmark = pytest.mark.django_db

LOGIN_URL = "/accounts/login/"
LOGOUT_URL = "/accounts/logout/"


def logged_in(username: str) -> Client:
    client = Client()
    response = client.post(LOGIN_URL, {"username": username, "password": PASSWORD})
    assert_status(response, 302)
    return client


def test_renders_login_form_when_anonymous_opens_login_page(client):
    response = assert_status(client.get(LOGIN_URL), 200)
    html = response.content.decode()
    assert "<h1>Log in</h1>" in html
    assert 'name="username"' in html
    assert 'name="password"' in html
    assert "csrfmiddlewaretoken" in html


def test_redirects_to_home_when_credentials_are_right(client, viewer):
    response = client.post(LOGIN_URL, {"username": "viewer", "password": PASSWORD})
    assert_status(response, 302)
    assert response["Location"] == "/"
    assert client.session["_auth_user_id"] == str(viewer.pk)


def test_redirects_to_next_when_it_is_a_local_path(client, viewer):
    response = client.post(LOGIN_URL, {"username": "viewer", "password": PASSWORD, "next": "/api/docs/"})
    assert_status(response, 302)
    assert response["Location"] == "/api/docs/"


def test_ignores_next_when_it_points_to_another_site(client, viewer):
    response = client.post(LOGIN_URL, {"username": "viewer", "password": PASSWORD, "next": "https://evil.example/"})
    assert_status(response, 302)
    assert response["Location"] == "/"


def test_shows_error_and_stays_anonymous_when_password_is_wrong(client, viewer):
    response = assert_status(client.post(LOGIN_URL, {"username": "viewer", "password": "nope nope"}), 200)
    html = response.content.decode()
    assert "didn't match" in html
    assert 'value="viewer"' in html  # the username is kept for the next try
    assert "_auth_user_id" not in client.session


def test_enforces_csrf_when_login_form_is_posted_without_token(viewer):
    client = Client(enforce_csrf_checks=True)
    assert_status(client.post(LOGIN_URL, {"username": "viewer", "password": PASSWORD}), 403)


def test_redirects_logged_in_user_home_when_login_page_is_opened(viewer):
    client = logged_in("viewer")
    response = client.get(LOGIN_URL)
    assert_status(response, 302)
    assert response["Location"] == "/"


def test_redirects_anonymous_user_to_login_when_home_is_opened(client):
    response = client.get("/")
    assert_status(response, 302)
    assert response["Location"] == f"{LOGIN_URL}?next=/"


def test_opens_the_plant_overview_when_viewer_of_one_plant_opens_home(viewer, plant_a, plant_b):
    line = make_line(plant_a, "Press line")
    make_device(line, "press-01")
    make_device(make_line(plant_b, "Paint line"), "paint-01")
    client = logged_in("viewer")
    response = assert_status(client.get("/"), 302)
    assert response["Location"] == f"/plants/{plant_a.pk}/"
    html = assert_status(client.get(response["Location"]), 200).content.decode()
    assert "Plant A" in html and "press-01" in html
    assert "Plant B" not in html and "paint-01" not in html
    assert "Log out viewer" in html


def test_lists_only_own_plants_with_roles_when_member_of_two_opens_home(viewer, plant_a, plant_b):
    make_user("third", plant=make_plant("Plant C"), role="viewer")
    member_set_role(plant=make_plant("Plant D"), user=viewer, role="operator")
    response = assert_status(logged_in("viewer").get("/"), 200)
    html = response.content.decode()
    assert "Plant A" in html and "Plant D" in html
    assert "Plant B" not in html and "Plant C" not in html
    assert "<td>viewer</td>" in html and "<td>operator</td>" in html
    assert f'href="/plants/{plant_a.pk}/"' in html


def test_lists_every_plant_when_superuser_opens_home(superuser, plant_a, plant_b):
    response = assert_status(logged_in("root").get("/"), 200)
    html = response.content.decode()
    assert "Plant A" in html
    assert "Plant B" in html


def test_says_no_role_yet_when_outsider_opens_home(outsider):
    response = assert_status(logged_in("outsider").get("/"), 200)
    html = response.content.decode()
    assert "You hold no role on any plant yet" in html
    assert "Plant A" not in html


def test_logs_out_when_logout_is_posted(viewer):
    client = logged_in("viewer")
    response = client.post(LOGOUT_URL)
    assert_status(response, 302)
    assert response["Location"] == LOGIN_URL
    assert "_auth_user_id" not in client.session
    assert_status(client.get("/"), 302)


def test_refuses_logout_with_405_when_requested_by_get(viewer):
    # A GET must not log anyone out (a link or <img> on another page could trigger it).
    client = logged_in("viewer")
    assert_status(client.get(LOGOUT_URL), 405)
    assert_status(client.get("/", follow=True), 200)
    assert "Log out viewer" in client.get("/", follow=True).content.decode()


def test_refuses_login_when_user_is_inactive(client):
    make_user("gone", is_active=False)
    response = assert_status(client.post(LOGIN_URL, {"username": "gone", "password": PASSWORD}), 200)
    assert "_auth_user_id" not in client.session
    assert "didn't match" in response.content.decode()
