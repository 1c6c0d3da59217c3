"""A device's side of MQTT for tests: a real client that publishes and waits until the broker has it."""

import contextlib
import json
import uuid
from urllib.parse import urlparse


@contextlib.contextmanager
def mqtt_publisher(url: str, client_id: str | None = None):
    """A connected MQTT v5 client on ``url`` (``mqtt://host:port``); yields
    ``publish(topic, payload, qos=1)`` (``payload``: bytes, or JSON-encoded), which returns once
    the broker has the message (QoS 1) or it is sent (QoS 0)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    parsed = urlparse(url)
    client_id = client_id or f"test-pub-{uuid.uuid4().hex[:10]}"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.connect(parsed.hostname, parsed.port or 1883)
    client.loop_start()

    def publish(topic: str, payload, qos: int = 1) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        info = client.publish(topic, body, qos=qos)
        info.wait_for_publish(5)
        assert info.is_published(), f"the broker did not take the message on {topic}"

    try:
        yield publish
    finally:
        client.disconnect()
        client.loop_stop()


class HoldingMqttProxy:
    """A TCP proxy in front of a real MQTT broker that lets a client's first ``allow`` PUBLISH
    packets through and then holds everything that client sends (``held`` counts the packets held):
    the client is left in the middle of a burst, some messages delivered, the rest not, waiting
    for acknowledgements, which is where a worker is killed "mid-push". ``allow = None`` lets later
    connections through untouched. Broker-to-client bytes always pass."""

    def __init__(self, upstream_url: str, allow: int | None):
        import socket
        import threading

        parsed = urlparse(upstream_url)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 1883)
        self.allow, self.forwarded, self.held = allow, 0, 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"mqtt://127.0.0.1:{self._listener.getsockname()[1]}"
        self._sockets = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(self.upstream)
            self._sockets += [client, server]
            threading.Thread(target=self._client_to_broker, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client), daemon=True).start()

    @staticmethod
    def _packets(buffer: bytearray):
        """Split complete MQTT control packets off the front of ``buffer``: (type, bytes)."""
        while len(buffer) >= 2:
            length, multiplier, index = 0, 1, 1
            while True:
                if index >= len(buffer):
                    return
                byte = buffer[index]
                length += (byte & 0x7F) * multiplier
                multiplier *= 128
                index += 1
                if not byte & 0x80:
                    break
            if len(buffer) < index + length:
                return
            packet = bytes(buffer[: index + length])
            del buffer[: index + length]
            yield packet[0] >> 4, packet

    def _client_to_broker(self, client, server) -> None:
        buffer, holding = bytearray(), False
        while True:
            try:
                data = client.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            buffer += data
            for kind, packet in self._packets(buffer):
                with self._lock:
                    if not holding and kind == 3 and self.allow is not None:  # PUBLISH
                        holding = self.forwarded >= self.allow
                        self.forwarded += not holding
                    if holding:
                        self.held += 1
                        continue
                try:
                    server.sendall(packet)
                except OSError:
                    break
        for sock in (client, server):
            with contextlib.suppress(OSError):
                sock.close()

    @staticmethod
    def _pipe(source, target) -> None:
        while True:
            try:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
            except OSError:
                break
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.close()

    def close(self) -> None:
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
