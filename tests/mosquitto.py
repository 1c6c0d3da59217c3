"""A private Mosquitto configured as production runs it: ``deploy/mosquitto.conf`` rendered by
``factory/mosquitto.py`` (what ``make broker`` runs) in a temp directory on free ports, with the
dynamic-security plugin, no anonymous clients, a device listener that makes each client's id its
username and a platform listener. The platform provisions it."""

import subprocess
from pathlib import Path

from factory import mosquitto
from factory.certs import make_certs
from tests.servers import free_port, port_open
from tests.waiting import wait_until

PLATFORM_USERNAME, BRIDGE_USERNAME = "platform@factory", "bridge@factory"


def mosquitto_available() -> bool:
    return mosquitto.missing() is None


class AuthBroker:
    """``url`` is the platform listener (MQTT_URL), ``device_url`` the device listener."""

    def __init__(self, directory: Path, *, tls: bool = False):
        self.directory = directory
        self.port, self.device_port = free_port(), free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.device_url = f"mqtt://127.0.0.1:{self.device_port}"
        # With ``tls``: a device listener over TLS too, its certificate from a local CA for "localhost".
        self.certs = make_certs(directory / "certs", ["localhost"]) if tls else None
        self.tls_port = free_port() if tls else None
        self.tls_url = f"mqtts://localhost:{self.tls_port}" if tls else None
        self.config = mosquitto.prepare(
            directory=directory,
            device_port=self.device_port,
            platform_port=self.port,
            platform_username=PLATFORM_USERNAME,
            tls_port=self.tls_port,
            certs=self.certs,
        )
        self.platform_password = mosquitto.read_secret(directory, mosquitto.PLATFORM_SECRET)
        self.bridge_password = mosquitto.read_secret(directory, mosquitto.BRIDGE_SECRET)
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        ports = [self.port, self.device_port] + ([self.tls_port] if self.tls_port else [])
        wait_until(lambda: all(port_open(p) for p in ports), 10, "the broker to listen")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def settings(self, settings) -> None:
        """Point Django's settings at this broker with the platform's and the bridge's credentials."""
        settings.MQTT_URL = self.url
        settings.MQTT_DEVICE_URL = self.device_url
        settings.MQTT_PLATFORM_USERNAME, settings.MQTT_PLATFORM_PASSWORD = PLATFORM_USERNAME, self.platform_password
        settings.MQTT_BRIDGE_USERNAME, settings.MQTT_BRIDGE_PASSWORD = BRIDGE_USERNAME, self.bridge_password


def connects(url: str, username: str | None = None, password: str | None = None, *, ca_file=None) -> bool:
    """Whether the broker at ``url`` (``mqtt://`` or ``mqtts://``, verified against ``ca_file`` or
    the system's CAs) accepts a connection with these credentials (None: anonymous)."""
    import ssl
    import threading
    from urllib.parse import urlsplit

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    parts = urlsplit(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if username is not None:
        client.username_pw_set(username, password)
    if parts.scheme == "mqtts":
        client.tls_set(ca_certs=str(ca_file) if ca_file else None)
    answered, accepted = threading.Event(), []
    client.on_connect = lambda c, u, f, reason_code, p: (accepted.append(not reason_code.is_failure), answered.set())
    try:
        client.connect(parts.hostname, parts.port)
    except ssl.SSLError:  # the certificate or its host name did not verify: nothing was sent
        return False
    client.loop_start()
    try:
        assert answered.wait(5), f"no CONNACK from {url}"
        return accepted[0]
    finally:
        client.disconnect()
        client.loop_stop()
