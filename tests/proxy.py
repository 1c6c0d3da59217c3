"""The reverse proxy of docker-compose.yml (Caddy, ``deploy/Caddyfile``) on this machine, for tests:
the same file with local ports, a local certificate and a local upstream."""

import os
import shutil
import subprocess
from pathlib import Path

from tests.servers import free_port, port_open
from tests.waiting import wait_until

CADDYFILE = Path(__file__).resolve().parent.parent / "deploy" / "Caddyfile"


def caddy_available() -> bool:
    return shutil.which("caddy") is not None


class Proxy:
    """Caddy with ``deploy/Caddyfile``: HTTPS on ``https_port``, redirects on ``http_port``, to ``upstream``."""

    def __init__(self, directory: Path, *, upstream: str, cert: Path, key: Path):
        self.directory = directory
        self.https_port, self.http_port = free_port(), free_port()
        text = CADDYFILE.read_text()
        for old, new in {
            "/run/secrets/server_crt": str(cert),
            "/run/secrets/server_key": str(key),
            "web:8000": upstream,
            ":443 {": f":{self.https_port} {{",
            ":80 {": f":{self.http_port} {{",
            # No admin endpoint on :2019: tests of several checkouts share this machine.
            "{\n\tauto_https": "{\n\tadmin off\n\tauto_https",
        }.items():
            assert old in text, f"deploy/Caddyfile no longer has {old!r}"
            text = text.replace(old, new)
        self.config = directory / "Caddyfile"
        self.config.write_text(text)
        self.process = None

    def start(self) -> "Proxy":
        env = {**os.environ, "HOME": str(self.directory), "XDG_DATA_HOME": str(self.directory / "data"),
               "XDG_CONFIG_HOME": str(self.directory / "config")}  # fmt: skip
        self.process = subprocess.Popen(
            ["caddy", "run", "--config", str(self.config), "--adapter", "caddyfile"],
            env=env, stdout=subprocess.DEVNULL, stderr=(self.directory / "caddy.log").open("w"),
        )  # fmt: skip
        wait_until(lambda: port_open(self.https_port) and port_open(self.http_port), 15, "Caddy to listen")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
