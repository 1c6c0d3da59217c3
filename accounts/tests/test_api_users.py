"""/api/v1/users/: accounts are created by superusers; /users/me/ tells anyone who they are."""

import pytest

from accounts.models import User
from accounts.roles import Role
from accounts.services import member_set_role
from conftest import assert_status
from devices.tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

URL = "/api/v1/users/"
ME = "/api/v1/users/me/"
NEW = {"username": "carol", "password": PASSWORD, "email": "carol@example.com"}


def user_state() -> list[tuple]:
    return list(
        User.objects.order_by("pk").values_list("pk", "username", "email", "password", "is_active", "is_superuser")
    )


def test_creates_user_with_hashed_password_when_superuser_posts_contract_body(client_for, superuser):
    response = assert_status(client_for(superuser).post(URL, NEW), 201)
    body = response.json()
    user = User.objects.get(pk=body["id"])
    assert (body["username"], body["email"], body["is_superuser"]) == ("carol", "carol@example.com", False)
    assert "password" not in body
    assert user.check_password(PASSWORD)
    assert PASSWORD not in user.password
    assert not user.is_superuser and not user.is_staff


def test_lets_new_user_log_in_with_jwt_when_created_via_api(client_for, superuser):
    assert_status(client_for(superuser).post(URL, NEW), 201)
    response = client_for(None).post("/api/v1/auth/token/", {"username": "carol", "password": PASSWORD})
    assert "access" in assert_status(response, 200).json()


@pytest.mark.parametrize("persona", ["outsider", "viewer", "operator", "plant_admin"])
def test_answers_403_and_creates_nothing_when_non_superuser_posts(request, client_for, persona):
    client = client_for(request.getfixturevalue(persona))
    before = user_state()
    response = assert_status(client.post(URL, NEW), 403)
    assert "superusers" in response.json()["detail"]
    assert user_state() == before


def test_answers_401_and_creates_nothing_when_anonymous_posts(client_for, db):
    before = user_state()
    assert_status(client_for(None).post(URL, NEW), 401)
    assert user_state() == before


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short1!", "too short"),
        ("password123", "too common"),
        ("48213957301", "entirely numeric"),
        ("carol-example", "too similar"),
        ("", "blank"),
    ],
)
def test_answers_400_naming_password_and_creates_nothing_when_password_is_weak(
    client_for, superuser, password, message
):
    before = user_state()
    response = assert_status(client_for(superuser).post(URL, {**NEW, "password": password}), 400)
    errors = response.json()["errors"]
    assert message in " ".join(errors["password"])
    assert response.json()["detail"] == "Invalid input in: password."
    assert user_state() == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"username": "root"}, "username"),
        ({"username": ""}, "username"),
        ({"username": "carol smith"}, "username"),
        ({"username": "c" * 151}, "username"),
        ({"email": "not-an-email"}, "email"),
        ({"is_superuser": True}, "is_superuser"),
        ({"is_staff": True}, "is_staff"),
        ({"role": "admin"}, "role"),
        ({"password": None}, "password"),
        ({"is_active": "sometimes"}, "is_active"),
    ],
)
def test_answers_400_naming_field_and_creates_nothing_when_input_is_invalid(client_for, superuser, change, field):
    before = user_state()
    response = assert_status(client_for(superuser).post(URL, {**NEW, **change}, format="json"), 400)
    assert field in response.json()["errors"]
    assert field in response.json()["detail"]
    assert user_state() == before


def test_answers_400_and_creates_nothing_when_body_is_not_json(client_for, superuser):
    before = user_state()
    response = client_for(superuser).post(URL, data='{"username": "carol",', content_type="application/json")
    assert "JSON parse error" in assert_status(response, 400).json()["detail"]
    assert user_state() == before


def test_lists_every_user_without_passwords_when_superuser_lists(client_for, superuser, viewer, outsider):
    body = assert_status(client_for(superuser).get(URL), 200).json()
    listed = [row["username"] for row in body["results"]]
    assert listed == list(User.objects.order_by("username").values_list("username", flat=True))
    assert {"outsider", "root", "viewer"} <= set(listed)
    assert all("password" not in row for row in body["results"])


@pytest.mark.parametrize("persona", ["outsider", "viewer", "operator", "plant_admin"])
def test_answers_403_when_non_superuser_lists_or_reads_users(request, client_for, viewer, persona):
    client = client_for(request.getfixturevalue(persona))
    assert_status(client.get(URL), 403)
    response = assert_status(client.get(f"{URL}{viewer.pk}/"), 403)
    assert "/members/" in response.json()["detail"]


def test_answers_403_and_changes_nothing_when_plant_admin_patches_user(client_for, plant_admin, viewer):
    before = user_state()
    assert_status(client_for(plant_admin).patch(f"{URL}{viewer.pk}/", {"password": "another long passphrase 1"}), 403)
    assert user_state() == before


def test_changes_password_when_superuser_patches_a_strong_one(client_for, superuser, viewer):
    assert_status(client_for(superuser).patch(f"{URL}{viewer.pk}/", {"password": "another long passphrase 1"}), 200)
    viewer.refresh_from_db()
    assert viewer.check_password("another long passphrase 1")


def test_answers_400_and_changes_nothing_when_superuser_patches_a_weak_password(client_for, superuser, viewer):
    before = user_state()
    patch = {"email": "new@example.com", "password": "123"}
    response = assert_status(client_for(superuser).patch(f"{URL}{viewer.pk}/", patch), 400)
    assert "too short" in " ".join(response.json()["errors"]["password"])
    assert user_state() == before
    viewer.refresh_from_db()
    assert viewer.check_password(PASSWORD)


def test_deactivates_user_when_superuser_patches_is_active(client_for, superuser, viewer):
    body = assert_status(client_for(superuser).patch(f"{URL}{viewer.pk}/", {"is_active": False}), 200).json()
    assert body["is_active"] is False
    viewer.refresh_from_db()
    assert viewer.is_active is False


def test_answers_405_and_keeps_user_when_superuser_deletes(client_for, superuser, viewer):
    assert_status(client_for(superuser).delete(f"{URL}{viewer.pk}/"), 405)
    assert User.objects.filter(pk=viewer.pk).exists()


@pytest.mark.parametrize("rows", [3, 30])
def test_keeps_list_query_count_constant_when_users_grow(client_for, superuser, rows, django_assert_max_num_queries):
    for index in range(rows):
        make_user(f"user{index:02d}")
    client = client_for(superuser)
    client.get(URL)  # warm per-process caches (content types): count only what each request costs
    with django_assert_max_num_queries(4):
        response = assert_status(client.get(URL), 200)
    assert response.json()["count"] == User.objects.count() >= rows + 1


def test_shows_roles_per_plant_when_member_reads_me(client_for, operator, plant_a, plant_b):
    member_set_role(plant=plant_b, user=operator, role=Role.ADMIN)
    body = assert_status(client_for(operator).get(ME), 200).json()
    assert body == {
        "id": operator.pk,
        "username": "operator",
        "email": "operator@example.com",
        "first_name": "",
        "last_name": "",
        "is_superuser": False,
        "roles": {str(plant_a.pk): "operator", str(plant_b.pk): "admin"},
    }


def test_shows_empty_roles_when_outsider_reads_me(client_for, outsider):
    body = assert_status(client_for(outsider).get(ME), 200).json()
    assert (body["username"], body["roles"]) == ("outsider", {})


def test_shows_superuser_flag_when_superuser_reads_me(client_for, superuser, plant_a):
    body = assert_status(client_for(superuser).get(ME), 200).json()
    assert (body["is_superuser"], body["roles"]) == (True, {})


def test_answers_401_when_anonymous_reads_me(client_for, db):
    response = assert_status(client_for(None).get(ME), 401)
    assert "credentials" in response.json()["detail"]


@pytest.mark.parametrize("rows", [1, 10])
def test_keeps_me_query_count_constant_when_roles_grow(client_for, rows, django_assert_max_num_queries):
    from devices.tests.factories import make_plant

    user = make_user("many")
    for _ in range(rows):
        member_set_role(plant=make_plant(), user=user, role=Role.VIEWER)
    client = client_for(user)
    client.get(ME)  # warm per-process caches (content types): count only what each request costs
    with django_assert_max_num_queries(3):
        body = assert_status(client.get(ME), 200).json()
    assert len(body["roles"]) == rows


def test_lists_no_anonymous_guardian_user_when_superuser_lists(client_for, superuser):
    from accounts.models import User

    assert not User.objects.filter(username="AnonymousUser").exists()
    response = assert_status(client_for(superuser).get("/api/v1/users/?page_size=1000"), 200)
    assert "AnonymousUser" not in [u["username"] for u in response.data["results"]]
