"""The device side of firmware updates (CONTRACT.md "Firmware, device side"), for the simulator.

A simulated device polls ``GET /api/v1/device/firmware/`` (or is woken by a command), downloads
the image in ranged pieces (resuming as after a dropped connection), checks the SHA-256 (and the
Ed25519 signature when it knows the plant's public key), installs, "reboots" and reports each
step. ``failure_rate`` makes a share of installs fail, to watch a rollout pause itself.
"""

import hashlib
import http.client
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import orjson

logger = logging.getLogger("simulator.firmware")
OFFER_PATH = "/api/v1/device/firmware/"
STATUS_PATH = "/api/v1/device/firmware/status/"

# (method, path, headers, body) -> (status, headers, body); headers lower-cased.
Request = Callable[[str, str, dict, bytes | None], tuple[int, dict, bytes]]


def http_requester(base_url: str, timeout: float = 30.0) -> Request:
    """A ``Request`` over plain ``http.client`` to ``base_url`` (one connection per call)."""
    parts = urlsplit(base_url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection

    def request(method: str, path: str, headers: dict, body: bytes | None = None):
        connection = connection_class(parts.hostname, parts.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            connection.close()

    return request


@dataclass
class OtaDevice:
    """One device's firmware behaviour. ``version`` is what it runs; ``update()`` does one update if offered."""

    uid: str
    token: str
    request: Request
    version: str = ""
    failure_rate: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    public_key: str = ""
    piece: int = 256 * 1024
    reboot_seconds: float = 0.0
    log: list = field(default_factory=list)

    def _headers(self, extra: dict | None = None) -> dict:
        return {"Authorization": f"Device {self.token}", **(extra or {})}

    def report(self, update_id: int, status: str, detail: str = "") -> int:
        body = orjson.dumps({"update_id": update_id, "status": status, "detail": detail})
        code, _, _ = self.request("POST", STATUS_PATH, self._headers({"Content-Type": "application/json"}), body)
        self.log.append((status, code))
        return code

    def poll(self) -> dict | None:
        code, _, body = self.request("GET", OFFER_PATH, self._headers(), None)
        return orjson.loads(body) if code == 200 else None

    def download(self, offer: dict) -> bytes:
        """The image, fetched in ranged pieces with ``If-Range``; raises ``ValueError`` on a bad answer."""
        path = urlsplit(offer["url"]).path
        data, etag = bytearray(), None
        while len(data) < offer["size"]:
            end = min(len(data) + self.piece, offer["size"]) - 1
            headers = {"Range": f"bytes={len(data)}-{end}"}
            if etag:
                headers["If-Range"] = etag
            code, response_headers, body = self.request("GET", path, self._headers(headers), None)
            if code not in (200, 206):
                raise ValueError(f"download answered {code}")
            if code == 200:  # the server ignored the range: it sent the whole image
                data = bytearray(body)
                break
            etag = response_headers.get("etag")
            data.extend(body)
        return bytes(data)

    def update(self, offer: dict | None = None) -> str | None:
        """Run one update (the given offer or the polled one); returns the final status reported, or None."""
        offer = offer or self.poll()
        if offer is None:
            return None
        update_id = offer["update_id"]
        if self.report(update_id, "downloading") not in (200,):
            return None
        try:
            image = self.download(offer)
        except (ValueError, OSError) as exc:
            self.report(update_id, "failed", f"download: {exc}")
            return "failed"
        if hashlib.sha256(image).hexdigest() != offer["sha256"] or len(image) != offer["size"]:
            self.report(update_id, "failed", "checksum mismatch")
            return "failed"
        if self.public_key and not _signature_ok(self.public_key, offer):
            self.report(update_id, "failed", "signature not from this plant")
            return "failed"
        self.report(update_id, "downloaded")
        self.report(update_id, "installing")
        if self.rng.random() < self.failure_rate:
            self.report(update_id, "failed", "flash verify error (simulated)")
            return "failed"
        time.sleep(self.reboot_seconds)  # the reboot into the new image
        self.version = offer["version"]
        self.report(update_id, "succeeded", f"booted {offer['version']}")
        return "succeeded"


def _signature_ok(public_key: str, offer: dict) -> bool:
    from firmware.services.signing import verify

    return bool(offer.get("signature")) and verify(public_key, offer["sha256"], offer["signature"])


def ota_loop(devices: list[OtaDevice], *, poll_interval: float, stop: threading.Event) -> None:
    """Poll for every device each ``poll_interval`` seconds and run the updates offered, until ``stop``."""
    while not stop.is_set():
        for device in devices:
            if stop.is_set():
                return
            try:
                outcome = device.update()
            except OSError as exc:
                logger.warning("%s: firmware poll failed: %s", device.uid, exc)
                continue
            if outcome:
                logger.info("%s: firmware update %s (now %s)", device.uid, outcome, device.version)
        stop.wait(poll_interval)


def ota_start(devices: list[OtaDevice], *, poll_interval: float) -> threading.Event:
    """Run ``ota_loop`` in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    threading.Thread(target=ota_loop, args=(devices,), kwargs={"poll_interval": poll_interval, "stop": stop},
                     name="ota", daemon=True).start()  # fmt: skip
    return stop
