"""The dashboard's "Devices waiting for approval" page (issue 14 item 4): plant admins see their
plant's pending provisioning requests and approve or reject them there; the device's next
provisioning call then gets its token (approved) or 401 (rejected), as CONTRACT.md says.
Viewers and operators get 403 and no badge; other plants' requests are 404."""

from datetime import UTC, datetime

import pytest
from django.core.cache import cache
from django.test import Client

from accounts.roles import Role
from accounts.services import member_set_role
from conftest import assert_status
from devices.models import Device, ProvisioningKey, ProvisioningRequest
from devices.services.provisioning import provisioning_key_create
from devices.tests.factories import make_line, make_plant

pytestmark = pytest.mark.django_db
PROVISION = "/api/v1/device/provision/"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


def provision(key: str, uid: str, address: str = "10.0.0.7"):
    body = {"uid": uid, "name": f"Device {uid}", "kind": "sensor", "model": "TH-20"}
    return Client().post(
        PROVISION, body, content_type="application/json", REMOTE_ADDR=address, HTTP_AUTHORIZATION=f"Provision {key}"
    )


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_url(plant) -> str:
    return f"/plants/{plant.pk}/approvals/"


@pytest.fixture
def waiting(plant_a):
    """Plant A's approval key (for line "Hall") and one device waiting with it: (key, plain key, request)."""
    key, plain = provisioning_key_create(
        plant=plant_a, line=make_line(plant_a, "Hall"), name="Hall sensors", needs_approval=True
    )
    assert_status(provision(plain, "th-101", address="10.1.2.3"), 202)
    return key, plain, ProvisioningRequest.objects.get(uid="th-101")


def test_a_plant_admin_sees_each_waiting_device_with_its_request_in_the_plants_zone(plant_a, plant_admin, waiting):
    key, _plain, request = waiting
    # 09:30 UTC on a winter day is 10:30 in the plant's zone (Europe/Berlin).
    ProvisioningRequest.objects.filter(pk=request.pk).update(created_at=datetime(2026, 1, 15, 9, 30, tzinfo=UTC))
    response = logged_in(plant_admin).get(page_url(plant_a))
    assert_status(response, 200)
    html = response.content.decode()
    for shown in ("th-101", "Device th-101", "sensor", "TH-20", "Hall sensors", f"{key.prefix}…", "Hall",
                  "10.1.2.3", "10:30"):  # fmt: skip
        assert shown in html, f"{shown!r} not on the page"
    assert f'action="/plants/{plant_a.pk}/approvals/{request.pk}/approve/"' in html
    assert f'action="/plants/{plant_a.pk}/approvals/{request.pk}/reject/"' in html
    assert 'data-role="approvals-badge">1<' in html


def test_approve_creates_the_device_and_its_next_provision_call_gets_a_working_token(plant_a, plant_admin, waiting):
    _key, plain, request = waiting
    response = logged_in(plant_admin).post(f"{page_url(plant_a)}{request.pk}/approve/", follow=True)
    assert_status(response, 200)
    html = response.content.decode()
    assert "Device th-101 approved: it receives its token on its next provisioning call." in html
    assert 'id="no-approvals"' in html  # the list is empty again, and so is the badge
    assert 'data-role="approvals-badge" hidden>0<' in html
    device = Device.objects.get(uid="th-101")
    assert (device.plant, device.line.name) == (plant_a, "Hall")

    answer = provision(plain, "th-101")
    assert_status(answer, 201)
    assert answer.json()["device"] == device.pk
    me = Client().get("/api/v1/device/", HTTP_AUTHORIZATION=f"Device {answer.json()['token']}")
    assert_status(me, 200)
    assert me.json()["uid"] == "th-101"
    request.refresh_from_db()
    assert (request.status, request.decided_by) == ("delivered", plant_admin)


def test_reject_refuses_the_devices_next_calls_with_401_without_listing_it_again(plant_a, plant_admin, waiting):
    key, plain, request = waiting
    response = logged_in(plant_admin).post(f"{page_url(plant_a)}{request.pk}/reject/", follow=True)
    assert_status(response, 200)
    assert "Device th-101 rejected." in response.content.decode()
    for _ in range(2):  # asking again is refused each time, uses nothing and lists nothing
        answer = provision(plain, "th-101")
        assert_status(answer, 401)
        assert "rejected device 'th-101'" in answer.json()["detail"]
    assert not Device.objects.filter(uid="th-101").exists()
    assert list(ProvisioningRequest.objects.values_list("uid", "status")) == [("th-101", "rejected")]
    assert ProvisioningKey.objects.get(pk=key.pk).uses == 1
    assert 'id="no-approvals"' in logged_in(plant_admin).get(page_url(plant_a)).content.decode()


def test_viewers_and_operators_get_403_and_no_badge_outsiders_404(plant_a, viewer, operator, outsider, waiting):
    _key, _plain, request = waiting
    for user, status in ((viewer, 403), (operator, 403), (outsider, 404)):
        client = logged_in(user)
        assert_status(client.get(page_url(plant_a)), status)
        assert_status(client.post(f"{page_url(plant_a)}{request.pk}/approve/"), status)
        assert_status(client.post(f"{page_url(plant_a)}{request.pk}/reject/"), status)
    overview = logged_in(operator).get(f"/plants/{plant_a.pk}/").content.decode()
    assert "approvals-badge" not in overview and "/approvals/" not in overview
    request.refresh_from_db()
    assert request.status == "pending" and not Device.objects.filter(uid="th-101").exists()


def test_another_plants_requests_are_404_to_a_plant_admin(plant_a, plant_b, plant_admin, waiting):
    _key, plain_b = provisioning_key_create(plant=plant_b, name="B key", needs_approval=True)
    assert_status(provision(plain_b, "b-201"), 202)
    foreign = ProvisioningRequest.objects.get(uid="b-201")
    client = logged_in(plant_admin)
    assert_status(client.get(page_url(plant_b)), 404)
    assert_status(client.post(f"{page_url(plant_b)}{foreign.pk}/approve/"), 404)
    # Through plant A's page: the request is not one of plant A's.
    assert_status(client.post(f"{page_url(plant_a)}{foreign.pk}/approve/"), 404)
    assert "b-201" not in client.get(page_url(plant_a)).content.decode()
    foreign.refresh_from_db()
    assert foreign.status == "pending" and not Device.objects.filter(uid="b-201").exists()


def test_a_decided_request_says_so_instead_of_failing(plant_a, plant_admin, waiting):
    _key, _plain, request = waiting
    client = logged_in(plant_admin)
    client.post(f"{page_url(plant_a)}{request.pk}/reject/")
    response = client.post(f"{page_url(plant_a)}{request.pk}/approve/", follow=True)
    assert_status(response, 200)
    assert "th-101: This request is rejected, not waiting for approval." in response.content.decode()
    assert not Device.objects.filter(uid="th-101").exists()


def test_the_empty_page_says_how_devices_get_here(plant_a, plant_admin):
    html = logged_in(plant_admin).get(page_url(plant_a)).content.decode()
    assert 'id="no-approvals"' in html
    assert "POST /api/v1/device/provision/" in html and "Zero-touch provisioning" in html
    assert 'data-role="approvals-badge" hidden>0<' in html


def test_the_list_part_alone_is_what_the_page_reloads_on_a_live_event(plant_a, plant_admin, waiting):
    response = logged_in(plant_admin).get(page_url(plant_a), {"part": "list"})
    assert_status(response, 200)
    html = response.content.decode()
    assert 'data-count="1"' in html and "th-101" in html and "<nav" not in html


def test_the_switcher_leads_to_the_approvals_of_plants_you_administer_and_else_to_their_overview(
    plant_a, plant_b, plant_admin
):
    plant_c = make_plant("Plant C")
    member_set_role(plant=plant_b, user=plant_admin, role=Role.VIEWER)
    member_set_role(plant=plant_c, user=plant_admin, role=Role.ADMIN)
    html = logged_in(plant_admin).get(page_url(plant_a)).content.decode()
    assert f'data-url="/plants/{plant_b.pk}/"' in html
    assert f'data-url="/plants/{plant_c.pk}/approvals/"' in html
