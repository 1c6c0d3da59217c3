import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile

from firmware.models import FirmwareImage
from firmware.services.images import image_create, image_delete
from firmware.services.signing import public_key_b64, verify
from firmware.tests.factories import image_bytes, make_fleet, make_image, make_rollout

pytestmark = pytest.mark.django_db


def test_upload_stores_checksum_size_and_file(plant_a):
    content = image_bytes(300_000)
    image = make_image(plant_a, "2.1.0", models=["HP-400", "hp-500 "])
    image = make_image(plant_a, "2.2.0", content=content)
    assert image.sha256 == hashlib.sha256(content).hexdigest()
    assert image.size == 300_000
    assert image.signature == ""
    with image.file.open("rb") as handle:
        assert handle.read() == content


def test_models_are_trimmed_and_matched_case_insensitively(plant_a):
    image = make_image(plant_a, "2.1.0", models=["HP-400", " hp-500 "])
    assert image.hardware_models == ["HP-400", "hp-500"]
    assert image.supports("HP-500") and not image.supports("HP-600")


def test_signs_the_digest_when_a_key_is_configured(plant_a, settings):
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    settings.FIRMWARE_SIGNING_KEY = base64.b64encode(raw).decode()
    image = make_image(plant_a, "3.0.0")
    assert verify(public_key_b64(), image.sha256, image.signature)
    assert not verify(public_key_b64(), hashlib.sha256(b"other").hexdigest(), image.signature)


def test_accepts_a_pem_signing_key(plant_a, settings):
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    settings.FIRMWARE_SIGNING_KEY = pem.decode()
    image = make_image(plant_a, "3.0.1")
    assert verify(public_key_b64(), image.sha256, image.signature)


def test_refuses_corrupt_upload_when_declared_checksum_differs(plant_a):
    with pytest.raises(ValidationError) as exc:
        make_image(plant_a, "2.0.0", declared_sha256="0" * 64)
    assert "corrupt" in str(exc.value)
    assert FirmwareImage.objects.count() == 0


def test_refuses_same_version_for_the_same_model(plant_a, plant_b):
    make_image(plant_a, "2.0.0", models=["HP-400", "HP-500"])
    with pytest.raises(ValidationError, match="already exists for hp-500"):
        make_image(plant_a, "2.0.0", models=["hp-500"])
    make_image(plant_a, "2.0.0", models=["HP-600"])  # another model: a different build
    make_image(plant_b, "2.0.0", models=["HP-400"])  # another plant
    assert FirmwareImage.objects.count() == 3


def test_refuses_image_over_the_size_limit(plant_a, settings):
    settings.FIRMWARE_MAX_BYTES = 1000
    with pytest.raises(ValidationError, match="limit is 1000"):
        image_create(plant=plant_a, version="2.0.0", hardware_models=["HP-400"], file=ContentFile(b"x" * 1001))
    assert FirmwareImage.objects.count() == 0


def test_refuses_non_semver_version(plant_a):
    with pytest.raises(ValidationError, match="semantic version"):
        make_image(plant_a, "2.0")
    with pytest.raises(ValidationError):
        make_image(plant_a, "02.0.0")
    assert make_image(plant_a, "2.5.0-rc.1+build.7").version == "2.5.0-rc.1+build.7"


def test_image_in_an_active_rollout_cannot_be_deleted(plant_a):
    make_fleet(plant_a, 2)
    image = make_image(plant_a, "2.0.0")
    make_rollout(plant_a, image)
    with pytest.raises(ValidationError, match="active rollout"):
        image_delete(image=image)
    assert FirmwareImage.objects.filter(pk=image.pk).exists()


def test_unused_image_is_deleted_with_its_file(plant_a, django_capture_on_commit_callbacks):
    image = make_image(plant_a, "2.0.0")
    storage, name = image.file.storage, image.file.name
    with django_capture_on_commit_callbacks(execute=True):
        image_delete(image=image)
    assert not FirmwareImage.objects.exists()
    assert not storage.exists(name)
