"""Who may enter /admin/: superusers and plant admins (no ``is_staff`` needed), nobody else."""

import pytest
from django.test import Client

from accounts.roles import Role
from accounts.services import member_set_role
from conftest import assert_status
from devices.tests.factories import PASSWORD, make_device, make_line, make_user

pytestmark = pytest.mark.django_db

LOGIN_URL = "/admin/login/"
REFUSAL = "not an administrator of any plant"


def admin_login(username: str, password: str = PASSWORD) -> tuple[Client, object]:
    client = Client()
    response = client.post(LOGIN_URL, {"username": username, "password": password, "next": "/admin/"})
    return client, response


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_plant_admin_without_staff_flag_logs_in_and_sees_index_when_password_is_right(plant_admin, plant_a):
    assert not plant_admin.is_staff
    client, response = admin_login("plantadmin")
    assert_status(response, 302)
    assert response["Location"] == "/admin/"
    body = assert_status(client.get("/admin/"), 200).content.decode()
    assert "Smart Factory IoT administration" in body
    for model in ("Plants", "Lines", "Devices", "Device groups", "Device tokens"):
        assert f">{model}<" in body
    # Accounts and raw role rows stay with superusers.
    assert "/admin/accounts/user/" not in body
    assert "/admin/accounts/plantrole/" not in body


@pytest.mark.parametrize("persona", ["viewer", "operator", "outsider"])
def test_login_form_refuses_with_message_when_user_administers_no_plant(persona, request):
    user = request.getfixturevalue(persona)
    client, response = admin_login(user.username)
    body = assert_status(response, 200).content.decode()
    assert REFUSAL in body
    assert "_auth_user_id" not in client.session
    response = assert_status(client.get("/admin/"), 302)
    assert response["Location"].startswith("/admin/login/")


def test_login_form_says_credentials_are_wrong_when_password_is_wrong(plant_admin):
    client, response = admin_login("plantadmin", "wrong password")
    body = assert_status(response, 200).content.decode()
    assert "correct username and password" in body
    assert REFUSAL not in body
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("persona", ["viewer", "operator", "outsider"])
def test_redirects_to_admin_login_when_logged_in_session_has_no_admin_role(persona, request, plant_a):
    client = logged_in(request.getfixturevalue(persona))
    for url in ("/admin/", "/admin/devices/device/", f"/admin/devices/plant/{plant_a.pk}/change/"):
        response = assert_status(client.get(url), 302)
        assert response["Location"].startswith(f"/admin/login/?next={url}")
    body = assert_status(client.get("/admin/login/"), 200).content.decode()
    assert "not authorized to access this page" in body


def test_refuses_login_when_plant_admin_is_inactive(plant_admin):
    plant_admin.is_active = False
    plant_admin.save()
    client, response = admin_login("plantadmin")
    assert_status(response, 200)
    assert "_auth_user_id" not in client.session


def test_refuses_session_when_plant_admin_loses_the_role(plant_admin, plant_a):
    client = logged_in(plant_admin)
    assert_status(client.get("/admin/"), 200)
    make_user("second-admin", plant=plant_a, role=Role.ADMIN)
    member_set_role(plant=plant_a, user=plant_admin, role=Role.VIEWER)
    response = assert_status(client.get("/admin/"), 302)
    assert response["Location"].startswith("/admin/login/")


def test_superuser_sees_every_plant_and_the_accounts(superuser, plant_a, plant_b):
    make_device(make_line(plant_b, "B line"), uid="b-press")
    client, response = admin_login("root")
    assert_status(response, 302)
    index = assert_status(client.get("/admin/"), 200).content.decode()
    assert "/admin/accounts/user/" in index
    plants = assert_status(client.get("/admin/devices/plant/"), 200).content.decode()
    assert "Plant A" in plants and "Plant B" in plants
    devices = assert_status(client.get("/admin/devices/device/"), 200).content.decode()
    assert "b-press" in devices
