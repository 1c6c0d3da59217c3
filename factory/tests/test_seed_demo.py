"""``manage.py seed_demo``: a demo plant with lines, devices, groups and users; safe to run again."""

import re
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.http import HttpRequest
from django.test import Client

from accounts.models import PlantRole, User
from accounts.roles import Role
from accounts.selectors import plant_roles_of
from devices.models import Device, DeviceGroup, DeviceToken, Line, Plant, PlantGroupObjectPermission
from devices.tests.factories import make_device, make_line, make_plant

pytestmark = pytest.mark.django_db

MODELS = [Plant, Line, Device, DeviceGroup, DeviceGroup.devices.through, DeviceToken, User, Group,
          User.groups.through, PlantRole, PlantGroupObjectPermission]  # fmt: skip


@pytest.fixture(autouse=True)
def _debug_on(settings):
    settings.DEBUG = True  # pytest-django runs tests with DEBUG off; the command runs only on dev machines


def seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def printed_passwords(output: str) -> dict[str, str]:
    return dict(re.findall(r"^\s+(admin|manager|operator|viewer)\s+(\S+)\s+\S+$", output, re.M))


def can_log_in(username: str, password: str) -> bool:
    # Axes' backend refuses to authenticate without a request, which Client.login() does not pass.
    return Client().login(request=HttpRequest(), username=username, password=password)


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


def test_creates_demo_plant_lines_devices_groups_and_users_when_database_is_empty():
    output = seed()
    plant = Plant.objects.get(name="Demo Plant")
    assert sorted(plant.lines.values_list("name", flat=True)) == ["Assembly", "Stamping"]
    assert Device.objects.filter(plant=plant).count() == 12
    assert set(Device.objects.filter(plant=plant).values_list("kind", flat=True)) == {"machine", "sensor", "gateway"}
    groups = {g.name: sorted(g.devices.values_list("uid", flat=True)) for g in DeviceGroup.objects.filter(plant=plant)}
    assert groups == {
        "Presses": ["press-01", "press-02", "press-03", "press-04"],
        "Robots": ["robot-01", "robot-02", "robot-03"],
    }
    roles = {
        name: plant_roles_of(User.objects.get(username=name)).get(plant.pk)
        for name in ("manager", "operator", "viewer")
    }
    assert roles == {"manager": Role.ADMIN, "operator": Role.OPERATOR, "viewer": Role.VIEWER}
    admin = User.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    assert "object(s) created" in output


def test_creates_nothing_and_says_so_when_run_a_second_time():
    first = seed()
    before = counts()
    second = seed()
    assert counts() == before
    assert "nothing new" in second
    assert printed_passwords(second) == printed_passwords(first)


def test_printed_passwords_let_each_demo_user_log_in():
    passwords = printed_passwords(seed())
    assert sorted(passwords) == ["admin", "manager", "operator", "viewer"]
    assert not can_log_in("manager", "not the printed password")
    for username, password in passwords.items():
        assert can_log_in(username, password), f"{username} cannot log in"


def test_printed_passwords_survive_a_second_run():
    seed()
    passwords = printed_passwords(seed())
    for username, password in passwords.items():
        assert can_log_in(username, password), f"{username} cannot log in after the rerun"


def test_demo_manager_enters_admin_and_sees_demo_devices():
    passwords = printed_passwords(seed())
    client = Client()
    response = client.post(
        "/admin/login/", {"username": "manager", "password": passwords["manager"], "next": "/admin/"}
    )
    assert response.status_code == 302, response.content[:500]
    body = client.get("/admin/devices/device/").content.decode()
    assert "press-01" in body and "gateway-01" in body


def test_leaves_other_plants_devices_alone_when_a_demo_uid_is_taken():
    other = make_plant("Other Plant")
    taken = make_device(make_line(other, "Other line"), uid="press-01")
    seed()
    presses = DeviceGroup.objects.get(plant__name="Demo Plant", name="Presses")
    assert taken not in presses.devices.all()
    assert sorted(presses.devices.values_list("uid", flat=True)) == ["press-02", "press-03", "press-04"]


def test_refuses_to_run_when_debug_is_off(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        seed()
    assert not Plant.objects.filter(name="Demo Plant").exists()
    assert not User.objects.filter(username__in=["admin", "manager", "operator", "viewer"]).exists()
