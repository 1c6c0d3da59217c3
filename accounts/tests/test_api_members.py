"""/api/v1/plants/<id>/members/: who holds which role on a plant, managed by its admins."""

import pytest

from accounts.models import PlantRole
from accounts.roles import Role
from accounts.selectors import plant_roles_of
from accounts.services import member_set_role
from conftest import assert_status
from devices.tests.factories import make_user

pytestmark = pytest.mark.django_db


def url(plant, user=None) -> str:
    return f"/api/v1/plants/{plant.pk}/members/" + (f"{user.pk}/" if user is not None else "")


def roles(plant) -> dict[str, str]:
    """username → role on ``plant``, read from the role groups (the source of truth)."""
    return {
        user.username: plant_role.role
        for plant_role in PlantRole.objects.filter(plant=plant).select_related("group")
        for user in plant_role.group.user_set.all()
    }


def test_lists_members_with_roles_when_viewer_reads(client_for, viewer, operator, plant_admin, plant_a, plant_b):
    make_user("bob", plant=plant_b, role=Role.ADMIN)
    body = assert_status(client_for(viewer).get(url(plant_a)), 200).json()["results"]
    assert [(m["username"], m["role"]) for m in body] == [
        ("operator", "operator"),
        ("plantadmin", "admin"),
        ("viewer", "viewer"),
    ]
    assert body[0] == {"id": operator.pk, "username": "operator", "email": "operator@example.com", "role": "operator"}


def test_lists_each_member_once_with_this_plants_role_when_member_of_several_plants(
    client_for, viewer, operator, plant_a, plant_b
):
    member_set_role(plant=plant_b, user=operator, role=Role.ADMIN)
    member_set_role(plant=plant_b, user=viewer, role=Role.OPERATOR)
    body = assert_status(client_for(viewer).get(url(plant_a)), 200).json()["results"]
    assert [(m["username"], m["role"]) for m in body] == [("operator", "operator"), ("viewer", "viewer")]


def test_answers_404_when_outsider_lists_members_of_plant_a(client_for, outsider, plant_admin, plant_a):
    response = assert_status(client_for(outsider).get(url(plant_a)), 404)
    assert "plantadmin" not in str(response.json())


@pytest.mark.parametrize("rows", [3, 30])
def test_keeps_query_count_constant_when_members_grow(
    client_for, plant_admin, plant_a, rows, django_assert_max_num_queries
):
    for index in range(rows):
        make_user(f"member{index:02d}", plant=plant_a, role=Role.OPERATOR)
    client = client_for(plant_admin)
    client.get(url(plant_a))  # warm per-process caches (content types): count only what each request costs
    with django_assert_max_num_queries(7):  # paginated: one COUNT more
        response = assert_status(client.get(url(plant_a)), 200)
    assert response.json()["count"] == len(response.json()["results"]) == rows + 1


def test_answers_201_and_grants_role_when_admin_adds_new_member(client_for, plant_admin, plant_a, alice):
    response = assert_status(client_for(plant_admin).post(url(plant_a), {"username": "alice", "role": "operator"}), 201)
    assert response.json() == {"id": alice.pk, "username": "alice", "email": "alice@example.com", "role": "operator"}
    assert plant_roles_of(alice) == {plant_a.pk: "operator"}


def test_answers_200_and_replaces_role_when_admin_changes_existing_member(client_for, plant_admin, viewer, plant_a):
    response = assert_status(client_for(plant_admin).post(url(plant_a), {"username": "viewer", "role": "admin"}), 200)
    assert response.json()["role"] == "admin"
    assert plant_roles_of(viewer) == {plant_a.pk: "admin"}


def test_grants_role_on_any_plant_when_superuser_posts(client_for, superuser, plant_b, alice):
    assert_status(client_for(superuser).post(url(plant_b), {"username": "alice", "role": "admin"}), 201)
    assert plant_roles_of(alice) == {plant_b.pk: "admin"}


def test_lets_admin_step_down_when_another_admin_remains(client_for, plant_admin, plant_a):
    make_user("second", plant=plant_a, role=Role.ADMIN)
    assert_status(client_for(plant_admin).post(url(plant_a), {"username": "plantadmin", "role": "viewer"}), 200)
    assert plant_roles_of(plant_admin) == {plant_a.pk: "viewer"}


@pytest.mark.parametrize("persona", ["viewer", "operator"])
def test_answers_403_and_grants_nothing_when_non_admin_posts(request, client_for, plant_admin, plant_a, alice, persona):
    user = request.getfixturevalue(persona)
    client = client_for(user)
    response = assert_status(client.post(url(plant_a), {"username": "alice", "role": "viewer"}), 403)
    assert "admin role" in response.json()["detail"]
    assert_status(client.post(url(plant_a), {"username": persona, "role": "admin"}), 403)
    assert plant_roles_of(alice) == {}
    assert plant_roles_of(user) == {plant_a.pk: persona}


def test_answers_404_and_grants_nothing_when_outsider_posts(client_for, outsider, plant_admin, plant_a):
    assert_status(client_for(outsider).post(url(plant_a), {"username": "outsider", "role": "admin"}), 404)
    assert plant_roles_of(outsider) == {}


def test_answers_404_when_admin_of_a_grants_role_on_plant_b(client_for, plant_admin, plant_b, alice):
    assert_status(client_for(plant_admin).post(url(plant_b), {"username": "alice", "role": "viewer"}), 404)
    assert plant_roles_of(alice) == {}


def test_answers_403_when_admin_of_a_grants_role_on_plant_where_only_viewer(client_for, plant_admin, plant_b, alice):
    member_set_role(plant=plant_b, user=plant_admin, role=Role.VIEWER)
    response = assert_status(
        client_for(plant_admin).post(url(plant_b), {"username": "plantadmin", "role": "admin"}), 403
    )
    assert "Plant B" in response.json()["detail"]
    assert plant_roles_of(plant_admin)[plant_b.pk] == "viewer"


def test_answers_400_and_keeps_last_admin_when_admin_demotes_self(client_for, plant_admin, plant_a):
    response = assert_status(
        client_for(plant_admin).post(url(plant_a), {"username": "plantadmin", "role": "operator"}), 400
    )
    assert "last admin" in response.json()["errors"]["role"][0]
    assert plant_roles_of(plant_admin) == {plant_a.pk: "admin"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "alice", "role": "owner"}, "role"),
        ({"username": "alice", "role": "Admin"}, "role"),
        ({"username": "alice"}, "role"),
        ({"role": "viewer"}, "username"),
        ({"username": "nobody", "role": "viewer"}, "username"),
        ({"username": ["alice"], "role": "viewer"}, "username"),
        ({"username": "alice", "role": "viewer", "email": "a@example.com"}, "email"),
        ({"username": "alice", "role": "viewer", "plant": 1}, "plant"),
    ],
)
def test_answers_400_naming_field_and_grants_nothing_when_input_is_invalid(
    client_for, plant_admin, plant_a, alice, body, field
):
    before = roles(plant_a)
    response = assert_status(client_for(plant_admin).post(url(plant_a), body, format="json"), 400)
    assert field in response.json()["errors"]
    assert field in response.json()["detail"]
    assert roles(plant_a) == before
    assert plant_roles_of(alice) == {}


def test_answers_400_and_grants_nothing_when_body_is_not_json(client_for, plant_admin, plant_a, alice):
    response = client_for(plant_admin).post(url(plant_a), data='{"username": "alice"', content_type="application/json")
    assert "JSON parse error" in assert_status(response, 400).json()["detail"]
    assert plant_roles_of(alice) == {}


def test_answers_204_and_removes_every_role_when_admin_removes_member(
    client_for, plant_admin, operator, plant_a, plant_b
):
    member_set_role(plant=plant_b, user=operator, role=Role.VIEWER)
    assert_status(client_for(plant_admin).delete(url(plant_a, operator)), 204)
    assert plant_roles_of(operator) == {plant_b.pk: "viewer"}


@pytest.mark.parametrize("persona", ["viewer", "operator"])
def test_answers_403_and_removes_nothing_when_non_admin_deletes(request, client_for, plant_admin, plant_a, persona):
    response = assert_status(client_for(request.getfixturevalue(persona)).delete(url(plant_a, plant_admin)), 403)
    assert "admin role" in response.json()["detail"]
    assert plant_roles_of(plant_admin) == {plant_a.pk: "admin"}


def test_answers_404_and_removes_nothing_when_outsider_deletes(client_for, outsider, plant_admin, viewer, plant_a):
    assert_status(client_for(outsider).delete(url(plant_a, viewer)), 404)
    assert plant_roles_of(viewer) == {plant_a.pk: "viewer"}


def test_answers_404_when_user_is_not_a_member_of_the_plant(client_for, plant_admin, plant_a, plant_b):
    bob = make_user("bob", plant=plant_b, role=Role.ADMIN)
    assert_status(client_for(plant_admin).delete(url(plant_a, bob)), 404)
    assert plant_roles_of(bob) == {plant_b.pk: "admin"}


def test_answers_400_and_keeps_last_admin_when_admin_removes_self(client_for, plant_admin, plant_a):
    response = assert_status(client_for(plant_admin).delete(url(plant_a, plant_admin)), 400)
    assert "last admin" in response.json()["errors"]["user"][0]
    assert plant_roles_of(plant_admin) == {plant_a.pk: "admin"}


def test_answers_204_when_admin_removes_self_and_another_admin_remains(client_for, plant_admin, plant_a):
    other = make_user("second", plant=plant_a, role=Role.ADMIN)
    assert_status(client_for(plant_admin).delete(url(plant_a, plant_admin)), 204)
    assert plant_roles_of(plant_admin) == {}
    assert plant_roles_of(other) == {plant_a.pk: "admin"}


def test_answers_400_when_superuser_removes_last_admin(client_for, superuser, plant_admin, plant_a):
    response = assert_status(client_for(superuser).delete(url(plant_a, plant_admin)), 400)
    assert "appoint another admin" in response.json()["errors"]["user"][0]
    assert plant_roles_of(plant_admin) == {plant_a.pk: "admin"}
