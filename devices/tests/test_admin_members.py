"""The plant's "Members and roles" admin page: grant, change and remove roles, never the last admin."""

import re

import pytest
from django.test import Client

from accounts.roles import Role
from accounts.selectors import plant_roles_of
from accounts.services import member_set_role
from conftest import assert_status
from devices.tests.factories import make_user

pytestmark = pytest.mark.django_db


def members_url(plant) -> str:
    return f"/admin/devices/plant/{plant.pk}/members/"


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def html(response) -> str:
    return response.content.decode()


def member_rows(body: str) -> list[tuple[str, str]]:
    """(username, role) pairs of the members table."""
    table = re.search(r'<table id="members">(.*?)</table>', body, re.S)
    assert table, "no members table on the page"
    return re.findall(r"<tr><td>([^<]+)</td><td>[^<]*</td><td>([^<]+)</td>", table[1])


def role_on(user, plant) -> str | None:
    return plant_roles_of(user).get(plant.pk)


@pytest.mark.parametrize("persona", ["plant_admin", "superuser"])
def test_plant_change_page_links_to_members_when_user_may_manage_plant(persona, request, plant_a):
    client = logged_in(request.getfixturevalue(persona))
    body = html(assert_status(client.get(f"/admin/devices/plant/{plant_a.pk}/change/"), 200))
    assert f'href="{members_url(plant_a)}"' in body
    assert "Members and roles" in body


def test_lists_members_with_roles_when_plant_admin_opens_the_page(
    plant_admin_client, plant_a, viewer, operator, plant_b
):
    make_user("bravo-only", plant=plant_b, role=Role.ADMIN)
    body = html(assert_status(plant_admin_client.get(members_url(plant_a)), 200))
    assert member_rows(body) == [("operator", "operator"), ("plantadmin", "admin"), ("viewer", "viewer")]
    assert "bravo-only" not in body


def test_grants_role_when_plant_admin_names_an_existing_user(plant_admin_client, plant_a, outsider):
    response = plant_admin_client.post(
        members_url(plant_a), {"username": "outsider", "role": "operator", "grant": "Save role"}
    )
    assert_status(response, 302)
    body = html(assert_status(plant_admin_client.get(response["Location"]), 200))
    assert "Outsider is now operator." in body  # the admin's message list capitalises the first letter
    assert ("outsider", "operator") in member_rows(body)
    assert role_on(outsider, plant_a) == Role.OPERATOR


def test_replaces_old_role_when_plant_admin_changes_it(plant_admin_client, plant_a, viewer):
    assert_status(
        plant_admin_client.post(members_url(plant_a), {"username": "viewer", "role": "admin", "grant": "1"}), 302
    )
    assert plant_roles_of(viewer) == {plant_a.pk: Role.ADMIN}
    assert viewer.groups.filter(plant_role__plant=plant_a).count() == 1
    body = html(plant_admin_client.get(members_url(plant_a)))
    assert ("viewer", "admin") in member_rows(body)
    assert ("viewer", "viewer") not in member_rows(body)


def test_shows_form_error_and_grants_nothing_when_username_is_unknown(plant_admin_client, plant_a, viewer):
    response = plant_admin_client.post(members_url(plant_a), {"username": "nobody", "role": "admin", "grant": "1"})
    assert "No user with this username" in html(assert_status(response, 200))
    assert len(member_rows(html(response))) == 2


def test_removes_member_when_plant_admin_clicks_remove(plant_admin_client, plant_a, operator):
    response = plant_admin_client.post(members_url(plant_a), {"remove": operator.pk})
    body = html(assert_status(plant_admin_client.get(assert_status(response, 302)["Location"]), 200))
    assert "Removed operator from Plant A." in body
    assert "operator" not in [name for name, _ in member_rows(body)]
    assert role_on(operator, plant_a) is None


def test_refuses_removing_last_admin_with_message_when_plant_admin_removes_self(
    plant_admin_client, plant_a, plant_admin
):
    response = plant_admin_client.post(members_url(plant_a), {"remove": plant_admin.pk})
    body = html(assert_status(response, 200))
    assert "Plantadmin is the last admin of Plant A; appoint another admin first." in body
    assert ("plantadmin", "admin") in member_rows(body)
    assert role_on(plant_admin, plant_a) == Role.ADMIN


def test_refuses_demoting_last_admin_with_message_when_role_would_change(plant_admin_client, plant_a, plant_admin):
    response = plant_admin_client.post(members_url(plant_a), {"username": "plantadmin", "role": "viewer", "grant": "1"})
    body = html(assert_status(response, 200))
    assert "last admin of Plant A" in body
    assert role_on(plant_admin, plant_a) == Role.ADMIN


def test_removes_an_admin_when_another_admin_remains(plant_admin_client, plant_a, plant_admin):
    other = make_user("second-admin", plant=plant_a, role=Role.ADMIN)
    assert_status(plant_admin_client.post(members_url(plant_a), {"remove": other.pk}), 302)
    assert role_on(other, plant_a) is None
    assert role_on(plant_admin, plant_a) == Role.ADMIN


def test_leaves_members_page_when_plant_admin_steps_down_and_another_admin_remains(
    plant_admin_client, plant_a, plant_admin
):
    make_user("second-admin", plant=plant_a, role=Role.ADMIN)
    response = plant_admin_client.post(members_url(plant_a), {"username": "plantadmin", "role": "viewer", "grant": "1"})
    assert assert_status(response, 302)["Location"] == "/admin/"
    assert role_on(plant_admin, plant_a) == Role.VIEWER
    assert plant_admin_client.get(members_url(plant_a))["Location"].startswith("/admin/login/")


def test_removes_every_role_when_member_was_put_into_two_role_groups_by_hand(plant_admin_client, plant_a, viewer):
    plant_a.roles.get(role=Role.OPERATOR).group.user_set.add(viewer)
    assert_status(plant_admin_client.post(members_url(plant_a), {"remove": viewer.pk}), 302)
    assert role_on(viewer, plant_a) is None


@pytest.mark.parametrize("value", ["not-a-number", "999999"])
def test_answers_404_and_changes_nothing_when_removed_user_is_not_a_member(plant_admin_client, plant_a, plant_b, value):
    stranger = make_user("bravo-admin", plant=plant_b, role=Role.ADMIN)
    for pk in (value, stranger.pk):
        assert_status(plant_admin_client.post(members_url(plant_a), {"remove": pk}), 404)
    assert role_on(stranger, plant_b) == Role.ADMIN


@pytest.mark.parametrize("persona", ["operator", "viewer", "outsider"])
def test_refuses_members_page_when_user_is_not_plant_admin(persona, request, plant_a, plant_admin):
    client = logged_in(request.getfixturevalue(persona))
    response = client.get(members_url(plant_a))
    assert response.status_code in (302, 403, 404), response.status_code
    if response.status_code == 302:
        assert response["Location"].startswith("/admin/login/")
    response = client.post(members_url(plant_a), {"remove": plant_admin.pk})
    assert response.status_code in (302, 403, 404)
    client.post(members_url(plant_a), {"username": persona, "role": "admin", "grant": "1"})
    assert role_on(plant_admin, plant_a) == Role.ADMIN
    assert role_on(request.getfixturevalue(persona), plant_a) != Role.ADMIN


def test_answers_404_when_operator_of_a_is_admin_elsewhere_and_opens_a(operator, plant_a, plant_b, plant_admin):
    """Admin rights on plant B open the admin, but not plant A's members page."""
    make_user("bravo-admin2", plant=plant_b, role=Role.ADMIN)
    member_set_role(plant=plant_b, user=operator, role=Role.ADMIN)
    client = logged_in(operator)
    assert_status(client.get("/admin/"), 200)
    assert_status(client.get(members_url(plant_a)), 404)
    assert_status(client.post(members_url(plant_a), {"username": "operator", "role": "admin", "grant": "1"}), 404)
    assert role_on(operator, plant_a) == Role.OPERATOR


def test_answers_404_when_plant_admin_of_a_opens_plant_b_members(plant_admin_client, plant_b, plant_admin):
    bravo_admin = make_user("bravo-admin", plant=plant_b, role=Role.ADMIN)
    assert_status(plant_admin_client.get(members_url(plant_b)), 404)
    assert_status(plant_admin_client.post(members_url(plant_b), {"remove": bravo_admin.pk}), 404)
    response = plant_admin_client.post(members_url(plant_b), {"username": "plantadmin", "role": "admin", "grant": "1"})
    assert_status(response, 404)
    assert role_on(bravo_admin, plant_b) == Role.ADMIN
    assert role_on(plant_admin, plant_b) is None


def test_superuser_manages_members_of_any_plant(superuser, plant_b, outsider):
    client = logged_in(superuser)
    response = client.post(members_url(plant_b), {"username": "outsider", "role": "admin", "grant": "1"})
    assert_status(response, 302)
    assert role_on(outsider, plant_b) == Role.ADMIN


def test_only_superusers_reach_guardian_object_permissions_when_opening_plant(superuser, plant_admin, plant_a):
    url = f"/admin/devices/plant/{plant_a.pk}/permissions/"
    change = f"/admin/devices/plant/{plant_a.pk}/change/"
    root = logged_in(superuser)
    assert_status(root.get(url), 200)
    assert url.encode() in root.get(change).content
    manager = logged_in(plant_admin)
    assert_status(manager.get(url), 403)
    page = assert_status(manager.get(change), 200)
    assert url.encode() not in page.content
    assert b"Members and roles" in page.content
