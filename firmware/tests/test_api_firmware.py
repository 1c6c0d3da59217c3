"""Management API: /api/v1/firmware/ (images). Plant admins upload and delete; members read."""

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from conftest import assert_status
from firmware.models import FirmwareImage
from firmware.tests.factories import image_bytes, make_fleet, make_image, make_rollout

pytestmark = pytest.mark.django_db
CONTENT = image_bytes(50_000, seed=3)


def upload(client, plant, version="2.0.0", **extra):
    data = {"plant": plant.pk, "version": version, "hardware_models": "HP-400, HP-500",
            "file": SimpleUploadedFile("fw.bin", CONTENT), **extra}  # fmt: skip
    return client.post("/api/v1/firmware/", data, format="multipart")


def test_plant_admin_uploads_and_gets_checksum_and_size(client_for, plant_admin, plant_a):
    body = assert_status(upload(client_for(plant_admin), plant_a, release_notes="Fixes"), 201).json()
    assert body["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert (body["size"], body["version"], body["hardware_models"]) == (50_000, "2.0.0", ["HP-400", "HP-500"])
    assert body["created_by"] == "plantadmin"
    assert "file" not in body


def test_viewer_and_operator_cannot_upload(client_for, viewer, operator, plant_a):
    for user in (viewer, operator):
        response = assert_status(upload(client_for(user), plant_a), 403)
        assert "admin role" in response.json()["detail"]
    assert not FirmwareImage.objects.exists()


def test_outsider_cannot_name_the_plant(client_for, outsider, plant_a):
    assert "plant" in assert_status(upload(client_for(outsider), plant_a), 400).json()["errors"]
    assert not FirmwareImage.objects.exists()


def test_non_semver_version_is_400(client_for, plant_admin, plant_a):
    response = assert_status(upload(client_for(plant_admin), plant_a, version="v2"), 400)
    assert "semantic version" in str(response.json()["errors"]["version"])
    assert not FirmwareImage.objects.exists()


def test_declared_checksum_mismatch_is_400(client_for, plant_admin, plant_a):
    response = assert_status(upload(client_for(plant_admin), plant_a, declared_sha256="a" * 64), 400)
    assert "corrupt" in str(response.json()["errors"]["sha256"])
    ok = upload(client_for(plant_admin), plant_a, declared_sha256=hashlib.sha256(CONTENT).hexdigest())
    assert_status(ok, 201)


def test_duplicate_version_is_400(client_for, plant_admin, plant_a):
    assert_status(upload(client_for(plant_admin), plant_a), 201)
    response = assert_status(upload(client_for(plant_admin), plant_a), 400)
    assert "already exists" in str(response.json()["errors"]["version"])
    assert FirmwareImage.objects.count() == 1


def test_list_shows_only_my_plants(client_for, viewer, plant_a, plant_b, django_assert_max_num_queries):
    mine = [make_image(plant_a, f"2.0.{i}") for i in range(3)]
    make_image(plant_b, "9.9.9")
    client = client_for(viewer)
    with django_assert_max_num_queries(6):
        body = assert_status(client.get("/api/v1/firmware/"), 200).json()
    assert sorted(row["id"] for row in body["results"]) == sorted(i.pk for i in mine)


def test_filter_by_model(client_for, viewer, plant_a):
    make_image(plant_a, "2.0.0", models=["HP-400"])
    wanted = make_image(plant_a, "2.0.1", models=["HP-500"])
    body = assert_status(client_for(viewer).get("/api/v1/firmware/?model=hp-500"), 200).json()
    assert [row["id"] for row in body["results"]] == [wanted.pk]


def test_outsider_gets_404_for_an_image(client_for, outsider, plant_a):
    image = make_image(plant_a, "2.0.0")
    assert_status(client_for(outsider).get(f"/api/v1/firmware/{image.pk}/"), 404)
    assert_status(client_for(outsider).delete(f"/api/v1/firmware/{image.pk}/"), 404)


def test_delete_trio_and_in_use_guard(client_for, viewer, plant_admin, plant_a):
    image = make_image(plant_a, "2.0.0")
    assert_status(client_for(viewer).delete(f"/api/v1/firmware/{image.pk}/"), 403)
    make_fleet(plant_a, 1)
    make_rollout(plant_a, image)
    response = assert_status(client_for(plant_admin).delete(f"/api/v1/firmware/{image.pk}/"), 400)
    assert "active rollout" in str(response.json())
    unused = make_image(plant_a, "2.0.1")
    assert_status(client_for(plant_admin).delete(f"/api/v1/firmware/{unused.pk}/"), 204)
    assert list(FirmwareImage.objects.values_list("pk", flat=True)) == [image.pk]
