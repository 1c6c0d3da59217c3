"""The device side (CONTRACT.md "Firmware, device side"): offer, ranged download, status reports."""

import hashlib

import pytest
from django.test import Client

from conftest import assert_status
from devices.models import Device
from firmware.models import RolloutTarget
from firmware.services.rollouts import rollout_start
from firmware.tests.factories import image_bytes, make_fleet, make_image, make_rollout

pytestmark = pytest.mark.django_db
CONTENT = image_bytes(150_001, seed=9)


@pytest.fixture
def running(plant_a, on_commit):
    """A running one-stage rollout to two devices; returns (rollout, [(device, token), ...])."""
    fleet = make_fleet(plant_a, 2)
    image = make_image(plant_a, "2.0.0", content=CONTENT)
    rollout = make_rollout(plant_a, image)
    on_commit(rollout_start, rollout=rollout)
    return rollout, fleet


def device_client(token) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Device {token}")


def offer(token) -> dict:
    return assert_status(device_client(token).get("/api/v1/device/firmware/"), 200).json()


def report(token, update_id, status, detail=""):
    body = {"update_id": update_id, "status": status, "detail": detail}
    return device_client(token).post("/api/v1/device/firmware/status/", body, content_type="application/json")


def download(token, url, **headers):
    response = device_client(token).get(url.removeprefix("http://testserver"), headers=headers)
    return response, b"".join(response.streaming_content) if getattr(response, "streaming", False) else b""


def test_offer_is_204_without_an_assigned_update(plant_a):
    (_, token), *_ = make_fleet(plant_a, 1)
    response = assert_status(device_client(token).get("/api/v1/device/firmware/"), 204)
    assert response.content == b""


def test_offer_names_version_url_checksum_and_size(running):
    rollout, [(device, token), _] = running
    body = offer(token)
    target = RolloutTarget.objects.get(rollout=rollout, device=device)
    assert body == {
        "update_id": target.pk,
        "version": "2.0.0",
        "url": f"http://testserver/api/v1/device/firmware/{target.pk}/download/",
        "sha256": hashlib.sha256(CONTENT).hexdigest(),
        "size": len(CONTENT),
    }


def test_offer_needs_a_device_token(running):
    assert_status(Client().get("/api/v1/device/firmware/"), 401)
    assert_status(Client(HTTP_AUTHORIZATION="Device nope.nope").get("/api/v1/device/firmware/"), 401)


def test_full_download_streams_the_image_with_etag_and_length(running):
    _, [(_, token), _] = running
    body = offer(token)
    response, data = download(token, body["url"])
    assert_status(response, 200)
    assert response["Content-Length"] == str(len(CONTENT))
    assert response["ETag"] == f'"{body["sha256"]}"'
    assert response["Accept-Ranges"] == "bytes"
    assert data == CONTENT


def test_range_download_resumes_and_the_halves_match_the_checksum(running):
    _, [(_, token), _] = running
    body = offer(token)
    half = len(CONTENT) // 2
    first, head = download(token, body["url"], Range=f"bytes=0-{half - 1}")
    assert_status(first, 206)
    assert first["Content-Range"] == f"bytes 0-{half - 1}/{len(CONTENT)}"
    assert first["Content-Length"] == str(half)
    rest, tail = download(token, body["url"], Range=f"bytes={half}-", **{"If-Range": first["ETag"]})
    assert_status(rest, 206)
    assert rest["Content-Length"] == str(len(CONTENT) - half)
    assert hashlib.sha256(head + tail).hexdigest() == body["sha256"]


def test_suffix_range_returns_the_last_bytes(running):
    _, [(_, token), _] = running
    response, data = download(token, offer(token)["url"], Range="bytes=-10")
    assert_status(response, 206)
    assert data == CONTENT[-10:]


def test_range_beyond_the_file_is_416(running):
    _, [(_, token), _] = running
    response, _ = download(token, offer(token)["url"], Range=f"bytes={len(CONTENT)}-")
    assert_status(response, 416)
    assert response["Content-Range"] == f"bytes */{len(CONTENT)}"
    assert "outside" in response.json()["detail"]


def test_device_cannot_fetch_another_devices_update(running):
    _, [(_, token), (_, other_token)] = running
    url = offer(token)["url"]
    response, _ = download(other_token, url)
    assert_status(response, 404)


def test_reports_move_the_update_forward_and_success_sets_the_version(running):
    rollout, [(device, token), _] = running
    update_id = offer(token)["update_id"]
    for status in ("downloading", "downloaded", "installing", "succeeded"):
        assert assert_status(report(token, update_id, status, f"{status}!"), 200).json()["status"] == status
    target = RolloutTarget.objects.get(pk=update_id)
    assert target.status == "succeeded"
    assert [e.status for e in target.events.all()] == ["notified", "downloading", "downloaded", "installing",
                                                        "succeeded"]  # fmt: skip
    device.refresh_from_db()
    assert device.firmware_version == "2.0.0"
    assert_status(device_client(token).get("/api/v1/device/firmware/"), 204)


def test_repeated_report_is_accepted_once(running):
    _, [(_, token), _] = running
    update_id = offer(token)["update_id"]
    assert_status(report(token, update_id, "downloading"), 200)
    assert_status(report(token, update_id, "downloading", "50%"), 200)
    assert RolloutTarget.objects.get(pk=update_id).events.filter(status="downloading").count() == 1


def test_out_of_order_report_is_409_and_changes_nothing(running):
    _, [(device, token), _] = running
    update_id = offer(token)["update_id"]
    assert_status(report(token, update_id, "installing"), 200)
    response = assert_status(report(token, update_id, "downloading"), 409)
    assert "cannot go back" in response.json()["detail"]
    assert RolloutTarget.objects.get(pk=update_id).status == "installing"
    assert_status(report(token, update_id, "failed", "flash error"), 200)
    assert_status(report(token, update_id, "succeeded"), 409)
    device.refresh_from_db()
    assert device.firmware_version == "1.0.0"


def test_report_for_another_devices_update_is_404_and_changes_nothing(running):
    _, [(_, token), (other, other_token)] = running
    update_id = offer(token)["update_id"]
    response = assert_status(report(other_token, update_id, "succeeded"), 404)
    assert "not assigned" in response.json()["detail"]
    assert RolloutTarget.objects.get(pk=update_id).status == "notified"
    assert Device.objects.get(pk=other.pk).firmware_version == "1.0.0"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"update_id": 1, "status": "done"}, "status"),
        ({"update_id": "1", "status": "failed"}, "update_id"),
        ({"update_id": 1, "status": "notified"}, "status"),
        ({"update_id": 1, "status": "failed", "extra": 1}, "extra"),
    ],
)
def test_malformed_report_is_400_naming_the_field(running, body, field):
    _, [(_, token), _] = running
    response = device_client(token).post("/api/v1/device/firmware/status/", body, content_type="application/json")
    assert field in assert_status(response, 400).json()["errors"]
    assert not RolloutTarget.objects.exclude(status="notified").exists()
