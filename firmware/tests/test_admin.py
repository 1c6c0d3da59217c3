"""Admin: plant admins upload images and watch rollouts with per-stage progress; other plants stay invisible."""

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from firmware.models import FirmwareImage, Rollout
from firmware.services.rollouts import rollout_start
from firmware.tests.factories import image_bytes, make_fleet, make_image, make_rollout

pytestmark = pytest.mark.django_db


def admin_client(user) -> Client:
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(user)
    return client


def test_plant_admin_uploads_an_image_in_the_admin(plant_admin, plant_a):
    content = image_bytes(10_000)
    response = admin_client(plant_admin).post(
        "/admin/firmware/firmwareimage/add/",
        {
            "plant": plant_a.pk,
            "version": "2.0.0",
            "hardware_models_text": "HP-400, HP-500",
            "release_notes": "",
            "file": SimpleUploadedFile("fw.bin", content),
            "declared_sha256": "",
        },  # fmt: skip
    )
    assert response.status_code == 302, response.content[:2000]
    image = FirmwareImage.objects.get()
    assert (image.sha256, image.size, image.hardware_models) == (
        hashlib.sha256(content).hexdigest(), 10_000, ["HP-400", "HP-500"]
    )  # fmt: skip
    assert image.created_by == plant_admin


def test_rollout_pages_show_progress_and_hide_other_plants(plant_admin, plant_a, plant_b, on_commit):
    make_fleet(plant_a, 3)
    rollout = make_rollout(plant_a, make_image(plant_a, "2.0.0"), stages=[1, "100%"], name="Spring")
    on_commit(rollout_start, rollout=rollout)
    make_fleet(plant_b, 1)
    make_rollout(plant_b, make_image(plant_b, "2.0.0"), name="Foreign")
    client = admin_client(plant_admin)
    listing = client.get("/admin/firmware/rollout/")
    assert listing.status_code == 200
    assert b"Spring" in listing.content and b"Foreign" not in listing.content
    assert b"stage 1: notified 1" in listing.content and b"stage 2: queued 2" in listing.content
    page = client.get(f"/admin/firmware/rollout/{rollout.pk}/change/")
    assert page.status_code == 200
    assert b"started" in page.content  # the audit trail inline


@pytest.mark.parametrize("state", ["completed", "cancelled", "failed"])
def test_a_finished_rollout_is_read_only_in_the_admin(plant_admin, plant_a, state):
    """Its page offered Save and took edits of its name, image and stages; now it is history."""
    make_fleet(plant_a, 2)
    rollout = make_rollout(plant_a, make_image(plant_a, "2.0.0"), stages=[1, "100%"], name="Spring")
    Rollout.objects.filter(pk=rollout.pk).update(state=state)
    client = admin_client(plant_admin)
    page = client.get(f"/admin/firmware/rollout/{rollout.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content and b'name="name"' not in page.content
    form = {"name": "Renamed", "stages": '["100%"]', "success_threshold": 50, "error_threshold": 90,
            "rolloutevent_set-TOTAL_FORMS": 0, "rolloutevent_set-INITIAL_FORMS": 0,
            "targets-TOTAL_FORMS": 0, "targets-INITIAL_FORMS": 0}  # fmt: skip
    assert client.post(f"/admin/firmware/rollout/{rollout.pk}/change/", form).status_code == 403
    rollout.refresh_from_db()
    assert (rollout.name, rollout.stages, rollout.state) == ("Spring", [1, "100%"], state)


def test_rollout_list_of_one_state_offers_only_the_actions_that_state_allows(plant_admin, plant_a):
    make_fleet(plant_a, 2)
    image = make_image(plant_a, "2.0.0")
    make_rollout(plant_a, image, name="Draft")
    done = make_rollout(plant_a, image, name="Done")
    Rollout.objects.filter(pk=done.pk).update(state="completed")
    client = admin_client(plant_admin)
    finished = client.get("/admin/firmware/rollout/?state__exact=completed").content.decode()
    assert 'value="retry"' in finished and 'value="rollback"' in finished
    for action in ("start", "pause", "resume", "cancel"):
        assert f'value="{action}"' not in finished, action
    drafts = client.get("/admin/firmware/rollout/?state__exact=draft").content.decode()
    assert 'value="start"' in drafts and 'value="retry"' not in drafts


def test_a_running_rollout_keeps_its_image_and_stages_but_may_be_renamed(plant_admin, plant_a, on_commit):
    make_fleet(plant_a, 2)
    rollout = make_rollout(plant_a, make_image(plant_a, "2.0.0"), stages=[1, "100%"], name="Spring")
    on_commit(rollout_start, rollout=rollout)
    client = admin_client(plant_admin)
    page = client.get(f"/admin/firmware/rollout/{rollout.pk}/change/").content.decode()
    assert 'name="name"' in page and 'name="stages"' not in page and 'name="image"' not in page
