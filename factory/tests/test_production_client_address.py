"""The production web command (docker-compose.yml's ``web``, the Dockerfile's ``CMD``) run for real:
a new X-Forwarded-For with each wrong password does not escape the login lockout, and from a
trusted proxy the forwarded address is the one counted."""

import json
import re
import sys

import httpx
import pytest
import yaml

from tests.servers import BASE_DIR, Daphne, ServerDatabase

WRONG = "not the password"


def _local(command: list[str]) -> list[str]:
    """``command`` on 127.0.0.1:{port} with one worker, run by this Python."""
    values = {"--host": "127.0.0.1", "--port": "{port}", "--workers": "1"}
    out = [sys.executable, "-m"]
    for index, arg in enumerate(command):
        previous = command[index - 1] if index else ""
        out.append(values.get(previous, str(arg)))
    return out


def compose_web_command() -> list[str]:
    return _local(yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())["services"]["web"]["command"])


def dockerfile_command() -> list[str]:
    line = re.search(r"^CMD (\[.*\])$", (BASE_DIR / "Dockerfile").read_text(), re.MULTILINE)[1]
    return _local(json.loads(line))


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("client-address")
    database = ServerDatabase(workdir).create()
    seeded = database.run_python("from tests.e2e_seed import seed; seed(devices=1, sensor=False)")
    try:
        yield database, seeded
    finally:
        database.drop()


def _statuses(url: str, password: str, attempts: list[tuple[str, str]]) -> list[int]:
    """One login per (password, X-Forwarded-For) through the API."""
    with httpx.Client(base_url=url, timeout=20) as client:
        return [
            client.post(
                "/api/v1/auth/token/",
                json={"username": "operator", "password": given},
                headers={"X-Forwarded-For": xff},
            ).status_code
            for given, xff in ((password if p is None else p, xff) for p, xff in attempts)
        ]


@pytest.mark.parametrize("command", [compose_web_command, dockerfile_command], ids=["compose web", "Dockerfile"])
def test_locks_out_a_client_that_claims_a_new_forwarded_address_each_time(database, tmp_path, command):
    db, seeded = database
    env = {**db.env, "TRUSTED_PROXIES": ""}
    server = Daphne(env, log=tmp_path / "server.log", server_args=command()).start(timeout=60)
    try:
        wrong = [(WRONG, f"203.0.113.{n}") for n in range(1, 8)]
        assert _statuses(server.url, seeded["password"], wrong) == [401] * 4 + [429] * 3
        assert _statuses(server.url, seeded["password"], [(None, "203.0.113.99")]) == [429]
    finally:
        server.stop()
        db.run_python("from axes.utils import reset; reset(); print('{}')")


def test_counts_the_forwarded_address_when_the_peer_is_a_trusted_proxy(database, tmp_path):
    db, seeded = database
    env = {**db.env, "TRUSTED_PROXIES": "127.0.0.1"}
    server = Daphne(env, log=tmp_path / "server.log", server_args=compose_web_command()).start(timeout=60)
    try:
        wrong = [(WRONG, "203.0.113.7")] * 5
        assert _statuses(server.url, seeded["password"], wrong) == [401] * 4 + [429]
        assert _statuses(server.url, seeded["password"], [(None, "203.0.113.7"), (None, "203.0.113.8")]) == [429, 200]
    finally:
        server.stop()
        db.run_python("from axes.utils import reset; reset(); print('{}')")
