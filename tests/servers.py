"""Real servers for end-to-end tests and benchmarks: a database of their own and Daphne processes.

pytest-django's SQLite test database lives in memory and its MariaDB one is wrapped in
transactions, so a second process can see neither. ``ServerDatabase`` creates a fresh database
(an SQLite file, or a MariaDB database next to the test one), migrates and seeds it in
subprocesses; ``Daphne`` runs ``factory.asgi:application`` on it and can be restarted on the
same port.
"""

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
from django.conf import settings

from tests.waiting import wait_until

BASE_DIR = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    """Whether something listens on ``127.0.0.1:port``."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class ServerDatabase:
    """A migrated database for server processes; ``env`` is what they need to use it."""

    def __init__(self, workdir: Path, channels_prefix: str | None = None, broker: bool = False):
        """``broker``: keep ``CELERY_BROKER_URL``, so alert evaluation goes to a Celery worker (start one
        with ``tests.worker.start_worker(database.env, ...)``: same database, broker and channel layer)."""
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        db = settings.DATABASES["default"]
        self.mysql = db["ENGINE"].endswith("mysql")
        if self.mysql:
            self.name = f"e2e_{os.getpid()}_{uuid.uuid4().hex[:6]}"
            credentials = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else "")
            self.server = f"mysql://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}"
            url = f"{self.server}/{self.name}"
        else:
            url = f"sqlite:///{workdir / 'e2e.sqlite3'}"
        self.env = {
            **os.environ,
            "DATABASE_URL": url,
            "DEBUG": "true",
            "SECRET_KEY": settings.SECRET_KEY,
            "DEVICE_TOKEN_HASH_KEY": settings.DEVICE_TOKEN_HASH_KEY,
            "VAR_DIR": str(workdir / "var"),
            # Its own channel-layer prefix: parallel runs on the same Redis never see each other's events.
            "CHANNELS_PREFIX": channels_prefix or f"e2e{uuid.uuid4().hex[:8]}",
            "TELEMETRY_RATE_LIMIT": "0",
        }
        # Alert evaluation inline (eager), as in the embedded default: a posted reading raises its
        # alarm without a Celery worker; unless ``broker``, as in production.
        if not broker:
            self.env.pop("CELERY_BROKER_URL", None)

    def create(self, migrate: bool = True) -> "ServerDatabase":
        """Create the database, migrated (``migrate=False``: empty, e.g. to restore a backup into)."""
        if self.mysql:
            self._mysql(f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        if migrate:
            self.manage("migrate", "--noinput", "-v0")
        return self

    def drop(self) -> None:
        if self.mysql:
            self._mysql(f"DROP DATABASE IF EXISTS `{self.name}`")

    def _mysql(self, sql: str) -> None:
        import MySQLdb

        db = settings.DATABASES["default"]
        conn = MySQLdb.connect(
            host=db["HOST"] or "127.0.0.1", port=int(db["PORT"] or 3306), user=db["USER"], passwd=db["PASSWORD"] or ""
        )
        try:
            conn.cursor().execute(sql)
        finally:
            conn.close()

    def manage(self, *args: str, timeout: float = 120) -> str:
        return manage(self.env, *args, timeout=timeout)

    def run_python(self, code: str) -> dict:
        return run_python(self.env, code)


def manage(env: dict, *args: str, timeout: float = 120) -> str:
    """``manage.py <args>`` under ``env`` (a server's: its database and settings); its output."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def run_python(env: dict, code: str) -> dict:
    """Run ``code`` with Django set up in a subprocess under ``env``; it prints one JSON object, returned here."""
    out = manage(env, "shell", "-c", code)
    return json.loads(out.strip().splitlines()[-1])


class Daphne:
    """One Daphne process on ``port`` (restartable there)."""

    def __init__(self, env: dict, port: int | None = None, log: Path | None = None, server_args: list | None = None):
        """``server_args``: another server's command line, with ``{port}`` (e.g. Uvicorn workers in bench/)."""
        self.env, self.port = env, port or free_port()
        self.log_path = log
        self.server_args = server_args
        self.process = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> "Daphne":
        log = self.log_path.open("a") if self.log_path else subprocess.DEVNULL
        command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "factory.asgi:application"]
        if self.server_args:
            command = [str(arg).format(port=self.port) for arg in self.server_args]
        self.process = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=bool(self.server_args),
        )

        def listening() -> bool:
            assert self.process.poll() is None, f"Daphne exited: {self.log_tail()}"
            return port_open(self.port)

        wait_until(listening, timeout, f"Daphne to listen on {self.port}: {self.log_tail()}")
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.process and self.server_args:  # a server with worker processes: none may outlive it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def log_tail(self) -> str:
        return self.log_path.read_text()[-3000:] if self.log_path and self.log_path.exists() else ""


def session_login(base_url: str, username: str, password: str) -> str:
    """Log in through the login form (CSRF included) and return the ``sessionid`` cookie value."""
    with httpx.Client(base_url=base_url) as client:
        client.get("/accounts/login/")
        form = {"username": username, "password": password, "csrfmiddlewaretoken": client.cookies["csrftoken"]}
        response = client.post("/accounts/login/", data=form)
        assert response.status_code == 302, f"login as {username} failed: {response.status_code}"
        return client.cookies["sessionid"]


def procfile_web_command(procfile: str = "Procfile.dev") -> tuple[dict[str, str], list[str]]:
    """The ``web`` line of ``procfile`` as honcho runs it for `make run` (its defaults, this Python):
    the variables the line sets before its command, and the command, with ``{port}`` for the port."""
    line = next(row for row in (BASE_DIR / procfile).read_text().splitlines() if row.startswith("web:"))
    values = {"HOST": "127.0.0.1", "WEB_PORT": "{port}"}
    line = re.sub(r"\$\{(\w+):-([^}]*)\}", lambda match: values.get(match[1], match[2]), line.removeprefix("web:"))
    words = shlex.split(line)
    assignments = {}
    while words and re.fullmatch(r"\w+=.*", words[0]):
        name, value = words.pop(0).split("=", 1)
        assignments[name] = value
    assert words[:3] == ["python", "manage.py", "serve"], f"{procfile}'s web line: {words}"
    return assignments, [sys.executable, *words[1:]]


def embedded_server(env: dict, log: Path) -> Daphne:
    """``manage.py serve`` exactly as ``Procfile.dev``'s ``web`` line starts it (the embedded default's
    web process: Daphne with Celery beat and, with MQTT_URL, the MQTT bridge inside), not yet started."""
    assignments, command = procfile_web_command()
    return Daphne({**env, **assignments}, log=log, server_args=command)


def post_reading(server: Daphne, device: dict, values: dict, state: str | None = None, ts: datetime | None = None):
    """POST one reading (``values``, a machine ``state``, taken at ``ts``, default now) to ``server`` as
    ``device`` (a seeded device: its ``token``) and check that ingest accepted it (202)."""
    body = {"ts": (ts or datetime.now(UTC)).astimezone(UTC).isoformat().replace("+00:00", "Z"), "values": values}
    if state:
        body["state"] = state
    headers = {"Authorization": f"Device {device['token']}"}
    response = httpx.post(f"{server.url}/api/v1/telemetry/", json=body, headers=headers)
    assert response.status_code == 202, response.text


def time_zone_at_noon() -> str:
    """A fixed-offset time zone in which it is about noon now (Etc/GMT-N is UTC+N): a plant whose day
    is not split by local midnight while a test runs."""
    offset = 12 - datetime.now(UTC).hour  # -11 … 12 hours
    return "UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


@contextlib.contextmanager
def live_stream(server: Daphne, username: str, password: str, plant: int):
    """A browser's ``/ws/live/?plant=`` stream on ``server``, logged in through the form, past its hello."""
    from websockets.sync.client import connect

    cookie = session_login(server.url, username, password)
    ws_url = server.url.replace("http://", "ws://") + f"/ws/live/?plant={plant}"
    headers = {"Cookie": f"sessionid={cookie}", "Origin": server.url}
    with connect(ws_url, additional_headers=headers, open_timeout=5) as browser:
        assert json.loads(browser.recv(timeout=5))["kind"] == "hello"
        yield browser


def next_event(browser, kind: str, timeout: float, before_each=None) -> tuple[dict | None, list[dict]]:
    """The first event of ``kind`` within ``timeout`` seconds (None if none came) and every event seen.

    ``before_each`` runs before each wait of at most a second (e.g. publish again until it arrives).
    """
    frames, deadline = [], time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        if before_each is not None:
            before_each()
        try:
            data = json.loads(browser.recv(timeout=min(left, 1.0) if before_each else left))
        except TimeoutError:
            continue
        frames += data if isinstance(data, list) else [data]
        found = next((frame for frame in frames if frame.get("kind") == kind), None)
        if found is not None:
            return found, frames
    return None, frames


@contextlib.contextmanager
def seeded_stack(
    workdir: Path, seed_code: str, *, env: dict | None = None, prepare=(), embedded: bool = False, broker: bool = False
):
    """A scratch database seeded by ``seed_code`` (prints one JSON object) and a server on it:
    yields ``(server, seeded)``; both are gone afterwards.

    ``env``: changes to the server's environment (``None`` removes a variable); ``prepare``:
    ``manage.py`` commands (tuples of arguments) run before the server starts; ``embedded``:
    ``manage.py serve`` (Daphne with beat and the MQTT bridge inside) instead of plain Daphne;
    ``broker``: the server keeps ``CELERY_BROKER_URL`` (alerts need a worker started on ``server.env``).
    """
    database = ServerDatabase(workdir, broker=broker).create()
    for name, value in (env or {}).items():
        if value is None:
            database.env.pop(name, None)
        else:
            database.env[name] = value
    try:
        seeded = database.run_python(seed_code)
        for command in prepare:
            database.manage(*command)
        if embedded:
            server = embedded_server(database.env, workdir / "serve.log")
        else:
            server = Daphne(database.env, log=workdir / "daphne.log")
        server.start(timeout=30)
        try:
            yield server, seeded
        finally:
            server.stop()
    finally:
        database.drop()
