"""The simulator's device side of OTA against the real endpoints (Django test client as transport)."""

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware.services.rollouts import rollout_start
from firmware.services.signing import public_key_b64
from firmware.tests.conftest import _eager_and_media  # noqa: F401 - autouse: eager Celery, a media dir per test
from firmware.tests.factories import django_requester, image_bytes, make_fleet, make_image, make_rollout
from simulator.firmware import OtaDevice

pytestmark = pytest.mark.django_db


def sim(device, token, **kwargs) -> OtaDevice:
    return OtaDevice(uid=device.uid, token=token, request=django_requester(), version=device.firmware_version, **kwargs)


def test_device_downloads_in_pieces_verifies_and_succeeds(plant_a, on_commit):
    [(device, token)] = make_fleet(plant_a, 1)
    on_commit(rollout_start, rollout=make_rollout(plant_a, make_image(plant_a, "2.0.0", content=image_bytes(70_000))))
    ota = sim(device, token, piece=16_384)
    assert on_commit(ota.update) == "succeeded"
    assert [status for status, _ in ota.log] == ["downloading", "downloaded", "installing", "succeeded"]
    assert all(code == 200 for _, code in ota.log)
    device.refresh_from_db()
    assert device.firmware_version == ota.version == "2.0.0"
    assert ota.update() is None  # nothing more to do


def test_failure_rate_makes_the_install_fail(plant_a, on_commit):
    [(device, token)] = make_fleet(plant_a, 1)
    on_commit(rollout_start, rollout=make_rollout(plant_a, make_image(plant_a, "2.0.0")))
    assert on_commit(sim(device, token, failure_rate=1.0).update) == "failed"
    device.refresh_from_db()
    assert device.firmware_version == "1.0.0"


def test_device_refuses_an_image_not_signed_by_its_plant(plant_a, on_commit, settings):
    [(device, token)] = make_fleet(plant_a, 1)
    raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    settings.FIRMWARE_SIGNING_KEY = base64.b64encode(raw).decode()
    trusted = public_key_b64()
    on_commit(rollout_start, rollout=make_rollout(plant_a, make_image(plant_a, "2.0.0")))
    assert on_commit(sim(device, token, public_key=trusted).update) == "succeeded"

    [(other, other_token)] = make_fleet(plant_a, 1, prefix="mill")
    on_commit(rollout_start, rollout=make_rollout(plant_a, make_image(plant_a, "2.1.0"), devices=[other]))
    foreign_key = base64.b64encode(b"\x01" * 32).decode()
    assert on_commit(sim(other, other_token, public_key=foreign_key).update) == "failed"
