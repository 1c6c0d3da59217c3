"""Plain factory functions for firmware tests (factory_boy clashes with our ``factory`` package)."""

import hashlib
import itertools

from django.core.files.base import ContentFile
from django.test import Client

from devices.tests.factories import make_device, make_line, make_token
from firmware.services.images import image_create
from firmware.services.rollouts import rollout_create

_seq = itertools.count(1)


def image_bytes(size: int = 200_000, seed: int = 1) -> bytes:
    """Deterministic pseudo-random firmware content of ``size`` bytes."""
    block = hashlib.sha256(str(seed).encode()).digest() * 32
    return (block * (size // len(block) + 1))[:size]


def make_image(plant, version: str | None = None, models=("HP-400",), content: bytes | None = None, **kwargs):
    version = version or f"2.0.{next(_seq)}"
    content = content if content is not None else image_bytes(seed=next(_seq))
    return image_create(
        plant=plant, version=version, hardware_models=list(models), file=ContentFile(content, name="fw.bin"), **kwargs
    )


def make_fleet(plant, count: int, *, model: str = "HP-400", version: str = "1.0.0", line=None, prefix="press"):
    """``count`` devices on one line, each with a token: returns ``[(device, plain_token), ...]``."""
    line = line or make_line(plant, f"Line {next(_seq)}")
    fleet = []
    for index in range(count):
        device = make_device(line, f"{prefix}-{next(_seq):04d}-{index}", model=model, firmware_version=version)
        fleet.append((device, make_token(device)[1]))
    return fleet


def make_rollout(plant, image, *, stages=("100%",), **kwargs):
    return rollout_create(plant=plant, name=kwargs.pop("name", f"Rollout {next(_seq)}"), image=image,
                          stages=list(stages), **kwargs)  # fmt: skip


def django_requester():
    """The simulator's ``request(method, path, headers, body)`` served by Django's test client
    (one client per request: the worker test calls it from several threads)."""

    def request(method, path, headers, body=None):
        client = Client()
        extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k != "Content-Type"}
        if method == "GET":
            response = client.get(path, **extra)
        else:
            response = client.post(path, body, content_type=headers.get("Content-Type"), **extra)
        content = b"".join(response.streaming_content) if response.streaming else response.content
        return response.status_code, {k.lower(): v for k, v in response.items()}, content

    return request
