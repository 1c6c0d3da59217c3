"""Firmware images: upload (checksum, size, signature, duplicate check) and deletion."""

import hashlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from devices.models import Plant
from firmware.models import FirmwareImage, Rollout
from firmware.services.signing import sign_digest

CHUNK = 1024 * 1024


def _digest(upload) -> tuple[str, int]:
    """SHA-256 and size of an uploaded file, read in chunks (never whole into memory)."""
    sha, size = hashlib.sha256(), 0
    upload.seek(0)
    for chunk in upload.chunks(CHUNK) if hasattr(upload, "chunks") else iter(lambda: upload.read(CHUNK), b""):
        sha.update(chunk)
        size += len(chunk)
    upload.seek(0)
    return sha.hexdigest(), size


def _normalise_models(models: list[str]) -> list[str]:
    cleaned = sorted({m.strip() for m in models if m and m.strip()}, key=str.lower)
    if not cleaned:
        raise ValidationError({"hardware_models": "Name at least one compatible hardware model."})
    return cleaned


@transaction.atomic
def image_create(
    *, plant: Plant, version: str, hardware_models: list[str], file, release_notes: str = "",
    declared_sha256: str = "", by=None,
) -> FirmwareImage:  # fmt: skip
    """Store a new image for ``plant`` and return it.

    Computes SHA-256 and size while streaming the upload, refuses it (``ValidationError``, nothing
    stored) when the size exceeds ``FIRMWARE_MAX_BYTES``, when ``declared_sha256`` does not match
    (a corrupt transfer), or when the plant already has this version for one of the models. Signs
    the digest with Ed25519 when ``FIRMWARE_SIGNING_KEY`` is set.
    """
    models = _normalise_models(hardware_models)
    sha256, size = _digest(file)
    if size == 0:
        raise ValidationError({"file": "The file is empty."})
    if size > settings.FIRMWARE_MAX_BYTES:
        raise ValidationError({"file": f"The image is {size} bytes; the limit is {settings.FIRMWARE_MAX_BYTES}."})
    if declared_sha256 and declared_sha256.strip().lower() != sha256:
        raise ValidationError(
            {"sha256": f"The uploaded file's SHA-256 is {sha256}, not the declared one: the upload is corrupt."}
        )
    # Serialise uploads per plant so two concurrent uploads of one version cannot both pass the check.
    Plant.objects.select_for_update().filter(pk=plant.pk).first()
    wanted = {m.lower() for m in models}
    for other in FirmwareImage.objects.filter(plant=plant, version=version):
        clash = sorted(wanted & {m.lower() for m in other.hardware_models})
        if clash:
            raise ValidationError(
                {"version": f"Version {version} already exists for {', '.join(clash)} in this plant."}
            )
    image = FirmwareImage(
        plant=plant, version=version, hardware_models=models, release_notes=release_notes, size=size,
        sha256=sha256, signature=sign_digest(sha256), created_by=by,
    )  # fmt: skip
    image.full_clean(exclude=["file"])
    image.file.save(f"{sha256}.bin", file, save=False)
    try:
        image.save()
    except Exception:
        image.file.delete(save=False)
        raise
    return image


def image_delete(*, image: FirmwareImage) -> None:
    """Delete an image and its file. Refused (``ValidationError``) while a rollout that uses it is active."""
    active = (Rollout.State.DRAFT, Rollout.State.SCHEDULED, Rollout.State.RUNNING, Rollout.State.PAUSED)
    in_use = (
        Rollout.objects.filter(state__in=active).filter(image=image).exists()
        or Rollout.objects.filter(state__in=active, targets__image=image).exists()
    )
    if in_use:
        raise ValidationError(
            "This image is used by an active rollout (draft, scheduled, running or paused); cancel or finish it first."
        )
    if image.targets.exists():
        raise ValidationError("This image is part of past rollouts' history; it cannot be deleted.")
    name = image.file.name
    storage = image.file.storage
    image.delete()
    transaction.on_commit(lambda: storage.delete(name))
