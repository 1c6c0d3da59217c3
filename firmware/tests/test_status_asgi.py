"""``POST /api/v1/device/firmware/status/`` through the real ASGI application (the lean route in
factory/asgi.py): same answers as through Django's test client (tests/urls.py), reports of many devices
applied together.

The lean path runs the ORM in worker threads, so these tests commit their rows
(``transaction=True``) and read them back after the answer.
"""

import asyncio

import orjson
import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from django.test import Client

from devices.models import DeviceToken
from devices.services.tokens import token_revoke
from firmware.models import RolloutTarget, RolloutTargetEvent
from firmware.services.rollouts import rollout_start
from firmware.status_http import firmware_status_http_batch
from firmware.tests.factories import make_fleet, make_image, make_rollout

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]
URL = "/api/v1/device/firmware/status/"


def _running(plant, devices: int):
    fleet = make_fleet(plant, devices)
    rollout = make_rollout(plant, make_image(plant, "2.0.0"))
    rollout_start(rollout=rollout)
    targets = {t.device_id: t.pk for t in RolloutTarget.objects.filter(rollout=rollout)}
    return rollout, [(device, token, targets[device.pk]) for device, token in fleet]


@pytest_asyncio.fixture
async def running(plant_a):
    return await sync_to_async(_running)(plant_a, 3)


def post(asgi_client, token: str | None, body, **headers):
    if token is not None:
        headers["Authorization"] = f"Device {token}"
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return asgi_client.post(URL, content=content, headers={"Content-Type": "application/json", **headers})


async def target(pk: int) -> RolloutTarget:
    return await RolloutTarget.objects.select_related("device").aget(pk=pk)


async def test_reports_move_the_update_and_success_sets_the_firmware_version(asgi_client, running):
    _, [(device, token, update_id), *_] = running
    for status in ("downloading", "downloaded", "installing", "succeeded"):
        response = await post(asgi_client, token, {"update_id": update_id, "status": status, "detail": f"{status}!"})
        assert (response.status_code, response.json()) == (200, {"update_id": update_id, "status": status})
        assert response.headers["content-type"] == "application/json"
    updated = await target(update_id)
    assert (updated.status, updated.detail, updated.device.firmware_version) == ("succeeded", "succeeded!", "2.0.0")
    history = [e async for e in RolloutTargetEvent.objects.filter(target_id=update_id).values_list("status", flat=True)]
    assert history == ["notified", "downloading", "downloaded", "installing", "succeeded"]


async def test_answers_exactly_as_the_django_view_and_changes_nothing_when_refused(asgi_client, running):
    _, [(_, token, update_id), (_, other_token, other_id), (revoked, revoked_token, _)] = running
    await sync_to_async(token_revoke)(token=await DeviceToken.objects.aget(device=revoked))
    assert (await post(asgi_client, token, {"update_id": update_id, "status": "installing"})).status_code == 200
    cases = [
        (None, {"update_id": update_id, "status": "failed"}),  # no token: 401
        ("nope.nope", {"update_id": update_id, "status": "failed"}),  # unknown token: 401
        (revoked_token, {"update_id": update_id, "status": "failed"}),  # revoked: 403
        (token, b"{not json"),
        (token, {"update_id": "1", "status": "done", "extra": 1}),
        (token, [1, 2]),
        (token, {"update_id": update_id, "status": "downloading"}),  # backwards: 409
        (other_token, {"update_id": update_id, "status": "succeeded"}),  # another device's update: 404
        (token, {"update_id": 10**9, "status": "failed"}),
    ]
    django = Client()
    lean_answers, django_answers = [], []
    for plain, body in cases:
        lean = await post(asgi_client, plain, body)
        lean_answers.append((lean.status_code, lean.json()))
        content = body if isinstance(body, bytes) else orjson.dumps(body)
        headers = {"HTTP_AUTHORIZATION": f"Device {plain}"} if plain else {}
        answer = await sync_to_async(django.post)(URL, content, content_type="application/json", **headers)
        django_answers.append((answer.status_code, orjson.loads(answer.content)))
    assert [status for status, _ in lean_answers] == [401, 401, 403, 400, 400, 400, 409, 404, 404]
    assert lean_answers == django_answers
    assert set(lean_answers[4][1]["errors"]) == {"update_id", "status", "extra"}
    assert "cannot go back" in lean_answers[6][1]["detail"]
    assert "not assigned" in lean_answers[7][1]["detail"]
    assert (await target(update_id)).status == "installing"
    assert (await target(other_id)).status == "notified"
    assert await RolloutTargetEvent.objects.filter(target_id=update_id).acount() == 2

    wrong_method = await asgi_client.get(URL, headers={"Authorization": f"Device {token}"})
    assert (wrong_method.status_code, wrong_method.headers["allow"]) == (405, "POST")


async def test_concurrent_reports_of_many_devices_are_each_answered_and_stored(asgi_client, plant_a):
    rollout, fleet = await sync_to_async(_running)(plant_a, 12)
    responses = await asyncio.gather(
        *(
            post(asgi_client, token, {"update_id": pk, "status": "downloading", "detail": device.uid})
            for device, token, pk in fleet
        )
    )
    assert [r.status_code for r in responses] == [200] * 12
    assert [r.json()["update_id"] for r in responses] == [pk for _, _, pk in fleet]
    rows = RolloutTarget.objects.filter(rollout=rollout).select_related("device")
    assert {(t.status, t.detail) async for t in rows} == {("downloading", t.device.uid) async for t in rows}
    assert await RolloutTargetEvent.objects.filter(target__rollout=rollout, status="downloading").acount() == 12


async def test_reports_for_one_update_in_one_batch_apply_in_order(running):
    _, [(_, token, update_id), *_] = running
    auth = f"Device {token}"

    def batch(*statuses):
        return [(auth, orjson.dumps({"update_id": update_id, "status": s})) for s in statuses]

    answers = await sync_to_async(firmware_status_http_batch)(batch("downloading", "installing", "downloaded"))
    assert [status for status, _, _ in answers] == [200, 200, 409]
    assert orjson.loads(answers[2][1])["detail"] == (
        f"Update {update_id} is already installing; it cannot go back to downloaded."
    )
    history = RolloutTargetEvent.objects.filter(target_id=update_id).values_list("status", flat=True)
    assert [s async for s in history] == ["notified", "downloading", "installing"]
