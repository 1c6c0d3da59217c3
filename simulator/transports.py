"""Senders for the three ingest transports of CONTRACT.md, as a device would use them.

Every transport sends a device's pending messages as one ``{"messages": [...]}`` payload and
reports a ``SendResult``; the runner decides what to do with it:

- ``ok``: stored (HTTP/WebSocket ``{"accepted": N}``) or, for MQTT, acknowledged by the broker
  (PUBACK; the bridge behind it answers nobody);
- ``rejected``: the server refused the payload itself (400): sending it again cannot help;
- ``auth``: 401/403 (a revoked or unknown token, a disabled device);
- ``retry``: try the same messages later (429, 5xx, a missing acknowledgement);
- ``unreachable``: no connection to the server or broker.
"""

import asyncio
import http.client
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson

logger = logging.getLogger("simulator")

OK, REJECTED, AUTH, RETRY, UNREACHABLE = "ok", "rejected", "auth", "retry", "unreachable"
TELEMETRY_PATH = "/api/v1/telemetry/"
WS_PATH = "/ws/devices/"
ACK_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: str
    accepted: int = 0
    detail: str = ""
    retry_after: float | None = None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _first_error(errors) -> str:
    if not errors:
        return "rejected without details"
    first = errors[0]
    return f"message {first.get('index')}, {first.get('field') or 'payload'}: {first.get('message')}"


def _float(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


async def tcp_probe(host: str, port: int, timeout: float = 2.0) -> str | None:
    """None when something accepts TCP connections at ``host:port``, else why not."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError) as exc:
        return _describe(exc)
    writer.close()
    return None


class Transport:
    """The interface the runner uses. ``target`` names the server in log lines."""

    name = ""
    target = ""

    async def open(self, tokens: dict[str, str]) -> None:
        """Prepare per-device state (connections are made lazily or in the background)."""

    async def probe(self) -> str | None:
        raise NotImplementedError

    async def send(self, uid: str, token: str, messages: list[dict]) -> SendResult:
        raise NotImplementedError

    def token_changed(self, uid: str, token: str) -> None:
        """The device's token was replaced (after a 401/403)."""

    async def close(self) -> None:
        """Release connections; pending sends are over by then."""


def http_result(status: int, body: bytes, retry_after: str | None) -> SendResult:
    """Map a response of ``POST /api/v1/telemetry/`` (CONTRACT.md) to a ``SendResult``."""
    try:
        data = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        data = {}
    data = data if isinstance(data, dict) else {}
    if status == 202:
        return SendResult(OK, accepted=int(data.get("accepted", 0)))
    if status in (401, 403):
        return SendResult(AUTH, detail=f"HTTP {status}: {data.get('detail', '')}")
    if status == 429 or status >= 500:
        return SendResult(RETRY, detail=f"HTTP {status}: {data.get('detail', '')}", retry_after=_float(retry_after))
    if status == 400:
        return SendResult(REJECTED, detail=f"HTTP 400: {_first_error(data.get('errors'))}")
    return SendResult(REJECTED, detail=f"HTTP {status}: {body[:200].decode(errors='replace')}")


class HttpTransport(Transport):
    """``POST /api/v1/telemetry/`` with ``Authorization: Device <token>``, one keep-alive connection per device.

    ``http.client`` runs in a thread pool (the standard library, no extra dependency); a device
    never has two requests in flight, so its connection is never shared between threads.
    """

    name = "http"

    def __init__(self, url: str, *, timeout: float = ACK_TIMEOUT, workers: int = 16):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--url must be http(s)://host[:port], not {url!r}.")
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname, parts.port or (443 if self.https else 80)
        self.path = parts.path.rstrip("/") + TELEMETRY_PATH
        self.target = f"{parts.scheme}://{parts.netloc}{self.path}"
        self.timeout = timeout
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="simulator-http")
        self.connections: dict[str, http.client.HTTPConnection] = {}

    async def probe(self) -> str | None:
        return await tcp_probe(self.host, self.port)

    async def send(self, uid: str, token: str, messages: list[dict]) -> SendResult:
        body = orjson.dumps({"messages": messages})
        return await asyncio.get_running_loop().run_in_executor(self.executor, self._post, uid, token, body)

    def _post(self, uid: str, token: str, body: bytes) -> SendResult:
        headers = {"Content-Type": "application/json", "Authorization": f"Device {token}"}
        for attempt in (1, 2):
            reused = uid in self.connections
            if not reused:
                cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
                self.connections[uid] = cls(self.host, self.port, timeout=self.timeout)
            conn = self.connections[uid]
            try:
                conn.request("POST", self.path, body, headers)
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self.connections.pop(uid, None)
                if reused and attempt == 1:
                    continue  # the server closed an idle keep-alive connection: one fresh try
                return SendResult(UNREACHABLE, detail=_describe(exc))
            if response.will_close:
                conn.close()
                self.connections.pop(uid, None)
            return http_result(response.status, data, response.getheader("Retry-After"))
        raise AssertionError("unreachable")

    async def close(self) -> None:
        for conn in list(self.connections.values()):
            conn.close()
        self.executor.shutdown(wait=False, cancel_futures=True)


class _MqttDevice:
    """One paho client per device: the broker authenticates username = uid, password = token."""

    def __init__(self, transport: "MqttTransport", uid: str, token: str, loop: asyncio.AbstractEventLoop):
        from paho.mqtt.client import CallbackAPIVersion, Client

        self.loop, self.uid = loop, uid
        self.connected = threading.Event()
        self.auth_error: str | None = None
        self.last_error = "connecting"
        self.lock = threading.Lock()
        self.pending: dict[int, asyncio.Future] = {}
        self.acked_early: set[int] = set()
        self.client = Client(CallbackAPIVersion.VERSION2, client_id=f"simulator-{uid}", clean_session=True)
        self.client.username_pw_set(uid, token)
        # Flow control: a bounded window in paho; the runner also waits for each PUBACK.
        self.client.max_inflight_messages_set(transport.inflight)
        self.client.max_queued_messages_set(transport.inflight)
        self.client.reconnect_delay_set(1, 30)
        if transport.tls:
            self.client.tls_set(ca_certs=transport.ca_file)  # verifies the certificate and the host name
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.connect_async(transport.host, transport.port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self.last_error = f"CONNACK: {reason_code}"
            if reason_code.value in (134, 135):  # bad user name or password / not authorised
                self.auth_error = self.last_error
            return
        self.auth_error = None
        self.connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        self.last_error = f"disconnected: {reason_code}"

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        # Runs in paho's thread while paho holds its own lock: never call paho from here.
        with self.lock:
            future = self.pending.pop(mid, None)
            if future is None:
                self.acked_early.add(mid)
        if future is not None:
            self.loop.call_soon_threadsafe(lambda: future.done() or future.set_result(None))

    def publish(self, topic: str, payload: bytes) -> tuple[int, asyncio.Future]:
        info = self.client.publish(topic, payload, qos=1)
        if info.rc != 0:
            raise ConnectionError(f"publish failed: {info.rc}")
        future = self.loop.create_future()
        with self.lock:
            if info.mid in self.acked_early:
                self.acked_early.discard(info.mid)
                future.set_result(None)
            else:
                self.pending[info.mid] = future
        return info.mid, future

    def forget(self, mid: int) -> None:
        with self.lock:
            self.pending.pop(mid, None)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class MqttTransport(Transport):
    """Publishes to ``factory/devices/<uid>/telemetry`` at QoS 1 and waits for the PUBACK."""

    name = "mqtt"

    def __init__(self, url: str, *, inflight: int = 10, ca_file: str | None = None):
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError(f"The MQTT URL must be mqtt(s)://host[:port], not {url!r}.")
        self.tls = parts.scheme == "mqtts"
        self.ca_file = ca_file  # mqtts: the CA that signed the broker's certificate (None: the system's)
        self.host, self.port = parts.hostname, parts.port or (8883 if self.tls else 1883)
        self.target = f"{parts.scheme}://{self.host}:{self.port}"
        self.inflight = inflight
        self.devices: dict[str, _MqttDevice] = {}

    async def open(self, tokens: dict[str, str]) -> None:
        loop = asyncio.get_running_loop()
        for uid, token in tokens.items():
            self.devices[uid] = _MqttDevice(self, uid, token, loop)
        # Give the clients a moment to connect so the first sends do not all look like an outage.
        deadline = loop.time() + 5.0
        for device in self.devices.values():
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            await asyncio.to_thread(device.connected.wait, remaining)

    async def probe(self) -> str | None:
        return await tcp_probe(self.host, self.port)

    async def send(self, uid: str, token: str, messages: list[dict]) -> SendResult:
        device = self.devices[uid]
        if device.auth_error:
            return SendResult(AUTH, detail=device.auth_error)
        if not device.connected.is_set():
            return SendResult(UNREACHABLE, detail=device.last_error)
        try:
            mid, future = device.publish(f"factory/devices/{uid}/telemetry", orjson.dumps({"messages": messages}))
        except (ConnectionError, OSError) as exc:
            return SendResult(UNREACHABLE, detail=_describe(exc))
        try:
            await asyncio.wait_for(future, ACK_TIMEOUT)
        except TimeoutError:
            device.forget(mid)
            return SendResult(RETRY, detail=f"no PUBACK within {ACK_TIMEOUT:.0f} s")
        return SendResult(OK, accepted=len(messages))

    def token_changed(self, uid: str, token: str) -> None:
        # A fresh client: paho's own reconnect must not be driven from outside its network thread.
        old = self.devices[uid]
        old.stop()
        self.devices[uid] = _MqttDevice(self, uid, token, old.loop)

    async def close(self) -> None:
        await asyncio.gather(*(asyncio.to_thread(device.stop) for device in self.devices.values()))


class WsTransport(Transport):
    """``/ws/devices/`` with the ``Authorization`` header; each frame is answered ``{"accepted"}``/``{"errors"}``."""

    name = "ws"

    def __init__(self, url: str):
        parts = urlsplit(url)
        scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
        if scheme is None or not parts.hostname:
            raise ValueError(f"--url must be http(s):// or ws(s)://host[:port], not {url!r}.")
        self.host, self.port = parts.hostname, parts.port or (443 if scheme == "wss" else 80)
        self.target = f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}{WS_PATH}"
        self.connections: dict[str, tuple[str, object]] = {}

    async def probe(self) -> str | None:
        return await tcp_probe(self.host, self.port)

    async def _connection(self, uid: str, token: str):
        from websockets.asyncio.client import connect

        current = self.connections.get(uid)
        if current is not None and current[0] == token:
            return current[1]
        if current is not None:
            await current[1].close()
        headers = {"Authorization": f"Device {token}"}
        conn = await connect(self.target, additional_headers=headers, open_timeout=5, close_timeout=2)
        self.connections[uid] = (token, conn)
        return conn

    async def _drop(self, uid: str) -> None:
        current = self.connections.pop(uid, None)
        if current is not None:
            await current[1].close()

    async def send(self, uid: str, token: str, messages: list[dict]) -> SendResult:
        from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

        try:
            conn = await self._connection(uid, token)
            await conn.send(orjson.dumps({"messages": messages}).decode())
            reply = await self._reply(conn)
        except ConnectionClosed as exc:
            await self._drop(uid)
            code = exc.rcvd.code if exc.rcvd is not None else None
            if code in (4401, 4403):
                return SendResult(AUTH, detail=f"closed {code}: {exc.rcvd.reason}")
            return SendResult(UNREACHABLE, detail=_describe(exc))
        except InvalidStatus as exc:
            await self._drop(uid)
            status = exc.response.status_code
            outcome = AUTH if status in (401, 403) else REJECTED if status == 404 else RETRY
            return SendResult(outcome, detail=f"WebSocket handshake answered HTTP {status}")
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            await self._drop(uid)
            return SendResult(UNREACHABLE, detail=_describe(exc))
        return self._result(reply, len(messages))

    @staticmethod
    async def _reply(conn) -> dict:
        """The acknowledgement of the frame just sent; commands offered meanwhile are logged and skipped."""
        while True:
            reply = orjson.loads(await asyncio.wait_for(conn.recv(), ACK_TIMEOUT))
            if isinstance(reply, dict) and "command" in reply:
                logger.info("Command received on the device WebSocket (ignored by the simulator): %s", reply)
                continue
            return reply if isinstance(reply, dict) else {}

    @staticmethod
    def _result(reply: dict, sent: int) -> SendResult:
        if "accepted" in reply:
            return SendResult(OK, accepted=int(reply["accepted"]))
        if "detail" in reply:
            return SendResult(AUTH, detail=str(reply["detail"]))
        errors = reply.get("errors") or []
        if reply.get("retry_after") is not None:
            return SendResult(RETRY, detail=_first_error(errors), retry_after=_float(reply["retry_after"]))
        if errors and errors[0].get("index") is None and "unavailable" in str(errors[0].get("message", "")).lower():
            return SendResult(RETRY, detail=_first_error(errors))
        return SendResult(REJECTED, detail=_first_error(errors))

    async def close(self) -> None:
        for uid in list(self.connections):
            await self._drop(uid)


def transport_for(
    via: str, *, url: str, mqtt_url: str | None, devices: int, mqtt_ca_file: str | None = None
) -> Transport:
    """The transport named by ``--via``; raises ``ValueError`` with what to fix."""
    if via == "http":
        return HttpTransport(url, workers=min(32, max(4, devices)))
    if via == "ws":
        return WsTransport(url)
    if via == "mqtt":
        if not mqtt_url:
            raise ValueError("--via mqtt needs a broker: pass --mqtt-url or set MQTT_URL (e.g. mqtt://127.0.0.1:1883).")
        return MqttTransport(mqtt_url, ca_file=mqtt_ca_file)
    raise ValueError(f"Unknown transport {via!r}: use http, mqtt or ws.")
