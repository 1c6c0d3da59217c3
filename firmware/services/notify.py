"""Telling devices about their update: MQTT ``factory/devices/<uid>/commands`` and the device WebSocket.

Devices can always poll ``GET /api/v1/device/firmware/``; these pushes only make them ask sooner,
so a lost push delays an update but never loses it.
"""

import logging
from urllib.parse import unquote, urlsplit

import orjson
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from commands.firmware import firmware_commands_record
from firmware.exceptions import TransientNotifyError
from firmware.models import RolloutTarget
from live.bus import send_device_commands

logger = logging.getLogger(__name__)


def download_path(target_id: int) -> str:
    return reverse("device_firmware_download", args=[target_id])


def update_offer(target: RolloutTarget, base_url: str | None = None) -> dict:
    """The device-facing description of an update (CONTRACT.md: update_id, version, url, sha256, size)."""
    image = target.image
    base = (base_url or settings.SITE_URL).rstrip("/")
    offer = {
        "update_id": target.pk,
        "version": image.version,
        "url": f"{base}{download_path(target.pk)}",
        "sha256": image.sha256,
        "size": image.size,
    }
    if image.signature:
        offer["signature"] = image.signature
    return offer


def _mqtt_publish(messages: list[tuple[str, bytes]]) -> None:
    """Publish at QoS 1 over one connection and wait for every PUBACK (bounded in-flight window)."""
    import paho.mqtt.client as mqtt

    url = urlsplit(settings.MQTT_URL)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="", clean_session=True)
    client.max_inflight_messages_set(200)
    client.max_queued_messages_set(0)
    if url.username:
        client.username_pw_set(unquote(url.username), unquote(url.password or ""))
    elif settings.MQTT_PLATFORM_PASSWORD:  # the platform's broker credentials (README "MQTT broker")
        client.username_pw_set(settings.MQTT_PLATFORM_USERNAME, settings.MQTT_PLATFORM_PASSWORD)
    if url.scheme == "mqtts":
        client.tls_set(ca_certs=settings.MQTT_CA_FILE)
    try:
        client.connect(url.hostname or "127.0.0.1", url.port or 1883, keepalive=30)
    except OSError as exc:
        raise TransientNotifyError(f"MQTT broker unreachable: {exc}") from exc
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(timeout=10)
    except (RuntimeError, ValueError) as exc:
        raise TransientNotifyError(f"MQTT publish failed: {exc}") from exc
    finally:
        client.loop_stop()
        client.disconnect()


def targets_notify(target_ids: list[int], command: str = "firmware_update") -> int:
    """Push ``command`` for each target still waiting for its device; returns how many were pushed.

    A firmware command goes only to targets whose push has not gone out yet (``pushed_at`` null),
    and marks them pushed once the broker has it: a task handed out again (Celery's redelivery of a
    dead worker's message) finds nothing left to do, and one killed mid-push is finished by the beat
    (``rollouts.targets_push_stuck``). A device may still get a command twice, when the worker
    died after the push and before marking it; that is harmless (the device acts on ``update_id``
    once). Raises ``TransientNotifyError`` when the broker is unreachable (nothing marked).
    """
    if command == "firmware_update":
        queryset = RolloutTarget.objects.filter(status__in=RolloutTarget.ACTIVE, pushed_at__isnull=True)
    else:
        queryset = RolloutTarget.objects.filter(status=RolloutTarget.Status.CANCELLED)
    targets = list(queryset.filter(pk__in=target_ids).select_related("device", "image", "rollout"))
    if not targets:
        return 0
    frames = []
    for target in targets:
        body = update_offer(target) if command == "firmware_update" else {"update_id": target.pk}
        frames.append((target, {"type": command, **body}))
    firmware_commands_record(frames, command)  # the device's command history (commands.firmware)
    send_device_commands([(t.device_id, frame) for t, frame in frames])
    if settings.MQTT_URL and settings.FIRMWARE_NOTIFY_MQTT:
        _mqtt_publish([(f"factory/devices/{t.device.uid}/commands", orjson.dumps(frame)) for t, frame in frames])
    if command == "firmware_update":
        pushed = [target.pk for target in targets]
        RolloutTarget.objects.filter(pk__in=pushed, pushed_at__isnull=True).update(pushed_at=timezone.now())
    return len(frames)
