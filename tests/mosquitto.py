"""A private Mosquitto configured as production runs it (deploy/mosquitto.conf): the dynamic-security
plugin, no anonymous clients, a device listener that makes each client's id its username and a
platform listener. Started in a temp directory on free ports; the platform provisions it."""

import getpass
import shutil
import subprocess
from pathlib import Path

from tests.servers import free_port, port_open
from tests.waiting import wait_until

PLUGIN = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
PLATFORM_USERNAME, PLATFORM_PASSWORD = "platform@factory", "test-platform-secret"
BRIDGE_USERNAME, BRIDGE_PASSWORD = "bridge@factory", "test-bridge-secret"


def mosquitto_available() -> bool:
    return bool(shutil.which("mosquitto") and shutil.which("mosquitto_ctrl") and Path(PLUGIN).exists())


class AuthBroker:
    """``url`` is the platform listener (MQTT_URL), ``device_url`` the device listener."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port, self.device_port = free_port(), free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.device_url = f"mqtt://127.0.0.1:{self.device_port}"
        self.dynsec = directory / "dynamic-security.json"
        self.config = directory / "mosquitto.conf"
        # "user": started as root, Mosquitto would switch to its own user, which cannot write here.
        self.config.write_text(
            f"per_listener_settings false\nallow_anonymous false\nuser {getpass.getuser()}\n"
            f"persistence true\npersistence_location {directory}/\n"
            f"plugin {PLUGIN}\nplugin_opt_config_file {self.dynsec}\n"
            f"listener {self.device_port} 127.0.0.1\nuse_username_as_clientid true\n"
            f"listener {self.port} 127.0.0.1\n"
        )
        self.process = None

    def start(self) -> None:
        if not self.dynsec.exists():
            subprocess.run(
                ["mosquitto_ctrl", "dynsec", "init", str(self.dynsec), PLATFORM_USERNAME, PLATFORM_PASSWORD],
                check=True, capture_output=True,
            )  # fmt: skip
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(lambda: port_open(self.port) and port_open(self.device_port), 10, "the broker to listen")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def settings(self, settings) -> None:
        """Point Django's settings at this broker with the platform's and the bridge's credentials."""
        settings.MQTT_URL = self.url
        settings.MQTT_DEVICE_URL = self.device_url
        settings.MQTT_PLATFORM_USERNAME, settings.MQTT_PLATFORM_PASSWORD = PLATFORM_USERNAME, PLATFORM_PASSWORD
        settings.MQTT_BRIDGE_USERNAME, settings.MQTT_BRIDGE_PASSWORD = BRIDGE_USERNAME, BRIDGE_PASSWORD
