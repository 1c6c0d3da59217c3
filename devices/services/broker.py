"""The MQTT broker's credentials and ACLs, kept in step with the device registry.

Mosquitto's dynamic-security plugin holds the broker's clients (username + salted hash of a
password), roles (ACLs) and whether a client is enabled. The platform drives it over MQTT
(``$CONTROL/dynamic-security/v1``) with its own credentials (``MQTT_PLATFORM_USERNAME`` and
``MQTT_PLATFORM_PASSWORD``); nothing here runs when those are not set (the embedded default, or a
broker managed by hand).

- One broker client per device: username = the device uid, one role ``device:<uid>`` that may
  publish under ``factory/devices/<uid>/`` (its command results on ``.../commands/result``, never
  to its commands topic) and subscribe to and receive ``factory/devices/<uid>/commands`` only.
- Its password is the device's newest token: set when the token is issued, the only moment its
  plain text exists (the registry keeps only an HMAC). ``DeviceToken.mqtt_password_at`` records
  which token the broker holds. Revoking that token, disabling the device or deleting it
  disables (or deletes) the client, which also closes its open connection.
- The bridge (``MQTT_BRIDGE_USERNAME``) may only read telemetry and command results; the platform
  may only publish commands (and administer the plugin).
- ``broker_reconcile`` makes the broker match the registry; running it twice changes nothing
  the second time.

Every call is one short MQTT connection on ``MQTT_URL``: the platform listener, which devices
cannot reach (``deploy/mosquitto.conf``). A broker that does not answer raises ``BrokerError``
and the caller's transaction rolls back: a token the broker does not know is never handed out.
"""

import json
import logging
import threading
import uuid
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from django.conf import settings

logger = logging.getLogger(__name__)

CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
BRIDGE_ROLE = "factory:bridge"
PLATFORM_ROLE = "factory:platform"
DEVICE_ROLE_PREFIX = "device:"
TELEMETRY = "factory/devices/+/telemetry"
RESULTS = "factory/devices/+/commands/result"  # devices' answers to commands (README "Device commands")
# What no client may do unless a role allows it (the plugin's own default lets everyone receive).
DEFAULT_ACCESS = {"publishClientSend": False, "publishClientReceive": False, "subscribe": False, "unsubscribe": True}


class BrokerError(Exception):
    """The broker did not answer or refused a command; nothing should be taken as done."""


def broker_managed() -> bool:
    """True when the platform provisions the broker (``MQTT_URL`` and the platform password set)."""
    return bool(settings.MQTT_URL and settings.MQTT_PLATFORM_PASSWORD)


def _acl(kind: str, topic: str, allow: bool = True, priority: int = 0) -> dict:
    return {"acltype": kind, "topic": topic, "allow": allow, "priority": priority}


def device_role_acls(uid: str) -> list[dict]:
    base = f"factory/devices/{uid}"
    return [
        # Higher priority first: a device never publishes to its own commands topic.
        _acl("publishClientSend", f"{base}/commands", allow=False, priority=1),
        _acl("publishClientSend", f"{base}/commands/result"),  # also under # below: named for the reader
        _acl("publishClientSend", f"{base}/#"),
        _acl("subscribePattern", f"{base}/commands"),
        _acl("publishClientReceive", f"{base}/commands"),
    ]


def service_roles() -> dict[str, list[dict]]:
    return {
        BRIDGE_ROLE: [
            _acl("subscribePattern", TELEMETRY),
            # MQTT 5 shared subscriptions of several bridges (``--shared-group``).
            _acl("subscribePattern", f"$share/+/{TELEMETRY}"),
            _acl("publishClientReceive", TELEMETRY),
            _acl("subscribePattern", RESULTS),
            _acl("subscribePattern", f"$share/+/{RESULTS}"),
            _acl("publishClientReceive", RESULTS),
        ],
        PLATFORM_ROLE: [_acl("publishClientSend", "factory/devices/+/commands")],
    }


def service_usernames() -> set[str]:
    return {settings.MQTT_PLATFORM_USERNAME, settings.MQTT_BRIDGE_USERNAME}


def broker_address(url: str | None = None) -> tuple[str, int, bool]:
    parts = urlsplit(url or settings.MQTT_URL)
    tls = parts.scheme == "mqtts"
    return parts.hostname or "127.0.0.1", parts.port or (8883 if tls else 1883), tls


def mqtt_client(*, username: str | None, password: str | None, client_id: str = "", url: str | None = None):
    """A paho MQTT v5 client for ``url`` (default ``MQTT_URL``) with credentials, not yet connected.

    Credentials in the URL (``mqtt://user:pass@host``) win over the arguments.
    """
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    parts = urlsplit(url or settings.MQTT_URL)
    if parts.username:
        username, password = unquote(parts.username), unquote(parts.password or "")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if username:
        client.username_pw_set(username, password)
    if parts.scheme == "mqtts":
        client.tls_set(ca_certs=settings.MQTT_CA_FILE)  # verifies the certificate and the host name
    return client


class _Control:
    """One connection of the platform to the dynamic-security plugin: send commands, get responses."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.client = mqtt_client(
            username=settings.MQTT_PLATFORM_USERNAME,
            password=settings.MQTT_PLATFORM_PASSWORD,
            client_id=f"factory-platform-{uuid.uuid4().hex[:12]}",
        )
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._answer = threading.Event()
        self._refused = None
        self._responses: list[dict] = []
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.on_message = self._on_message

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            self._refused = str(reason_code)
        self._connected.set()

    def _on_message(self, client, userdata, message):
        self._responses = json.loads(message.payload).get("responses", [])
        self._answer.set()

    def __enter__(self):
        host, port, _ = broker_address()
        try:
            self.client.connect(host, port, keepalive=30)
        except OSError as exc:
            raise BrokerError(f"The MQTT broker at {host}:{port} is unreachable ({exc}).") from None
        self.client.loop_start()
        if not self._connected.wait(self.timeout):
            self.__exit__()
            raise BrokerError(f"The MQTT broker at {host}:{port} did not answer the connection.")
        if self._refused:
            self.__exit__()
            raise BrokerError(
                f"The MQTT broker refused the platform's credentials ({self._refused}): check "
                "MQTT_PLATFORM_USERNAME and MQTT_PLATFORM_PASSWORD."
            )
        self.client.subscribe(RESPONSE_TOPIC, qos=1)
        if not self._subscribed.wait(self.timeout):
            self.__exit__()
            raise BrokerError("The MQTT broker did not confirm the dynamic-security response subscription.")
        return self

    def __exit__(self, *exc):
        self.client.disconnect()
        self.client.loop_stop()

    def send(self, commands: list[dict]) -> list[dict]:
        """Send ``commands`` in one request and return the plugin's response per command."""
        if not commands:
            return []
        self._answer.clear()
        # QoS 0 on this local connection: the answer is the acknowledgement. At QoS 1 the broker's
        # PUBACK and its answer meet Nagle's algorithm and a delayed ACK: ~40 ms per command.
        self.client.publish(CONTROL_TOPIC, json.dumps({"commands": commands}), qos=0)
        if not self._answer.wait(self.timeout):
            raise BrokerError(
                "The MQTT broker did not answer the dynamic-security command: is the plugin "
                "(mosquitto_dynamic_security.so) loaded? See deploy/mosquitto.conf."
            )
        return self._responses

    def grant_self(self, role: str) -> None:
        """Add ``role`` to the platform's own client; the broker then closes this connection."""
        self._answer.clear()
        command = {"command": "addClientRole", "username": settings.MQTT_PLATFORM_USERNAME, "rolename": role}
        self.client.publish(CONTROL_TOPIC, json.dumps({"commands": [command]}), qos=0)
        self._answer.wait(self.timeout / 5)  # the answer may be lost with the connection; the caller checks


def _control() -> _Control:
    return _Control(settings.MQTT_ADMIN_TIMEOUT)


def _checked(responses: list[dict], tolerated: tuple[str, ...] = ()) -> list[dict]:
    for response in responses:
        error = response.get("error")
        if error and not any(text in error for text in tolerated):
            raise BrokerError(f"The MQTT broker refused '{response.get('command')}': {error}.")
    return responses


def _reserved(uid: str) -> None:
    if uid in service_usernames():
        raise BrokerError(f"'{uid}' is the broker username of a platform service; give the device another uid.")


def _device_commands(uid: str, password: str | None) -> list[dict]:
    role = DEVICE_ROLE_PREFIX + uid
    create = {"command": "createClient", "username": uid, "roles": [{"rolename": role}]}
    if password is not None:
        create["password"] = password
    return [{"command": "createRole", "rolename": role, "acls": device_role_acls(uid)}, create]


def broker_device_set_password(*, uid: str, password: str, enabled: bool = True) -> None:
    """Make ``password`` the device's MQTT password (creating its client and role when missing).

    Changing the password closes the device's open connection: it reconnects with the new token.
    """
    _reserved(uid)
    state = "enableClient" if enabled else "disableClient"
    commands = [
        *_device_commands(uid, password),  # "already exists" for a device that had a token before
        {"command": "setClientPassword", "username": uid, "password": password},
        {"command": state, "username": uid},
    ]
    with _control() as control:
        _checked(control.send(commands), tolerated=("already exists",))


def broker_device_disable(*, uid: str) -> None:
    """Refuse the device at the broker from now on (its open connection is closed)."""
    _reserved(uid)
    with _control() as control:
        _checked(control.send([{"command": "disableClient", "username": uid}]), tolerated=("not found",))


def broker_device_enable(*, uid: str) -> None:
    _reserved(uid)
    with _control() as control:
        _checked(control.send([{"command": "enableClient", "username": uid}]), tolerated=("not found",))


def broker_device_delete(*, uid: str) -> None:
    """Remove the device's client and role (its open connection is closed)."""
    _reserved(uid)
    with _control() as control:
        _checked(control.send([
            {"command": "deleteClient", "username": uid},
            {"command": "deleteRole", "rolename": DEVICE_ROLE_PREFIX + uid},
        ]), tolerated=("not found",))  # fmt: skip


def bridge_credentials_work() -> bool:
    """True when the broker accepts the bridge's configured credentials (a test connection)."""
    client = mqtt_client(username=settings.MQTT_BRIDGE_USERNAME, password=settings.MQTT_BRIDGE_PASSWORD)
    outcome: list[bool] = []
    done = threading.Event()

    def on_connect(client, userdata, flags, reason_code, properties):
        outcome.append(not reason_code.is_failure)
        done.set()

    client.on_connect = on_connect
    host, port, _ = broker_address()
    try:
        client.connect(host, port, keepalive=10)
    except OSError as exc:
        raise BrokerError(f"The MQTT broker at {host}:{port} is unreachable ({exc}).") from None
    client.loop_start()
    try:
        done.wait(settings.MQTT_ADMIN_TIMEOUT)
    finally:
        client.disconnect()
        client.loop_stop()
    return bool(outcome and outcome[0])


@dataclass
class ReconcileReport:
    changes: list[str] = field(default_factory=list)
    need_token: list[str] = field(default_factory=list)  # devices the broker has no password for
    unchanged: int = 0


def _acl_key(acl: dict) -> tuple:
    return (acl["acltype"], acl["topic"], bool(acl.get("allow")), int(acl.get("priority", 0)))


def _ensure_role(control: _Control, roles: dict[str, set], name: str, acls: list[dict], report: ReconcileReport):
    if name not in roles:
        _checked(control.send([{"command": "createRole", "rolename": name, "acls": acls}]))
        report.changes.append(f"created role {name}")
        return
    have = roles[name]
    want = {_acl_key(a) for a in acls}
    commands = [{"command": "removeRoleACL", "rolename": name, "acltype": k[0], "topic": k[1]} for k in have - want]
    commands += [{"command": "addRoleACL", "rolename": name, **a} for a in acls if _acl_key(a) not in have]
    if commands:
        _checked(control.send(commands))
        report.changes.append(f"fixed the ACLs of role {name}")


def broker_reconcile(*, dry_run: bool = False) -> ReconcileReport:
    """Make the broker's clients, roles and defaults match the registry; idempotent.

    Creates what is missing, enables or disables each device's client as the registry says
    (enabled device and an active token the broker holds), fixes ACLs that differ, and deletes
    clients and roles of devices that no longer exist. A device whose token the broker never got
    (issued before the broker was provisioned, or the broker's data was lost) is listed in
    ``need_token``: its plain text exists nowhere, so it needs a new token.
    """
    from django.utils import timezone

    from devices.models import Device, DeviceToken
    from devices.services.tokens import broker_password_holders  # it calls this module: import when used

    if not broker_managed():
        raise BrokerError("Set MQTT_URL and MQTT_PLATFORM_PASSWORD: the platform provisions the broker with them.")
    report = ReconcileReport()
    now = timezone.now()
    holders = broker_password_holders()
    devices = {d.uid: d for d in Device.objects.only("id", "uid", "enabled")}
    active = DeviceToken.objects.filter(revoked_at=None).exclude(expires_at__lte=now)
    with_active_tokens = set(active.values_list("device_id", flat=True))

    with _control() as control:
        listed = _checked(control.send([
            {"command": "listClients", "verbose": True},
            {"command": "listRoles", "verbose": True},
            {"command": "getDefaultACLAccess"},
        ]))  # fmt: skip
        clients = {c["username"]: c for c in listed[0].get("data", {}).get("clients", [])}
        roles = {
            r["rolename"]: {_acl_key(a) for a in r.get("acls", [])} for r in listed[1].get("data", {}).get("roles", [])
        }
        defaults = {a["acltype"]: a["allow"] for a in listed[2].get("data", {}).get("acls", [])}
        if dry_run:
            control.send = _dry_run_send(report)  # type: ignore[method-assign]

        if any(defaults.get(kind) != allow for kind, allow in DEFAULT_ACCESS.items()):
            acls = [{"acltype": kind, "allow": allow} for kind, allow in DEFAULT_ACCESS.items()]
            _checked(control.send([{"command": "setDefaultACLAccess", "acls": acls}]))
            report.changes.append("set the default ACL access (deny unless a role allows)")
        for name, acls in service_roles().items():
            _ensure_role(control, roles, name, acls, report)

        platform = clients.get(settings.MQTT_PLATFORM_USERNAME, {})
        grant_platform = PLATFORM_ROLE not in {r["rolename"] for r in platform.get("roles", [])}
        bridge = settings.MQTT_BRIDGE_USERNAME
        if settings.MQTT_BRIDGE_PASSWORD:
            if bridge not in clients:
                _checked(control.send([{
                    "command": "createClient", "username": bridge, "password": settings.MQTT_BRIDGE_PASSWORD,
                    "roles": [{"rolename": BRIDGE_ROLE}],
                }]))  # fmt: skip
                report.changes.append(f"created the bridge's client {bridge}")
            else:
                commands = []
                if BRIDGE_ROLE not in {r["rolename"] for r in clients[bridge].get("roles", [])}:
                    commands.append({"command": "addClientRole", "username": bridge, "rolename": BRIDGE_ROLE})
                if clients[bridge].get("disabled"):
                    commands.append({"command": "enableClient", "username": bridge})
                # Only a changed secret is set again: setting it closes the bridge's connection.
                if not bridge_credentials_work():
                    commands.append(
                        {"command": "setClientPassword", "username": bridge, "password": settings.MQTT_BRIDGE_PASSWORD}
                    )
                if commands:
                    _checked(control.send(commands))
                    report.changes.append(f"updated the bridge's client {bridge}")

        for uid, device in sorted(devices.items()):
            if uid in service_usernames():
                report.changes.append(f"skipped device {uid}: its uid is a service's broker username")
                continue
            role = DEVICE_ROLE_PREFIX + uid
            _ensure_role(control, roles, role, device_role_acls(uid), report)
            holder = holders.get(device.pk)
            usable = holder is not None and holder.is_active(now)
            client = clients.get(uid)
            if device.enabled and (client is None or not usable) and device.pk in with_active_tokens:
                report.need_token.append(uid)
            if client is None:
                # Without a password nobody can log in as it; it holds the device's role until a token arrives.
                _checked(control.send([{"command": "createClient", "username": uid, "roles": [{"rolename": role}]},
                                       {"command": "disableClient", "username": uid}]))  # fmt: skip
                report.changes.append(f"created the client of {uid} (no password until a new token)")
                continue
            commands = []
            if role not in {r["rolename"] for r in client.get("roles", [])}:
                commands.append({"command": "addClientRole", "username": uid, "rolename": role})
            should_enable = device.enabled and usable
            if bool(client.get("disabled")) == should_enable:
                commands.append({"command": "enableClient" if should_enable else "disableClient", "username": uid})
            if commands:
                _checked(control.send(commands))
                report.changes.append(f"updated the client of {uid}")
            else:
                report.unchanged += 1

        keep = service_usernames() | set(devices)
        for username in sorted(set(clients) - keep):
            if not any(r["rolename"].startswith(DEVICE_ROLE_PREFIX) for r in clients[username].get("roles", [])):
                continue  # a client someone added by hand (not a device's): leave it
            _checked(control.send([{"command": "deleteClient", "username": username}]), tolerated=("not found",))
            report.changes.append(f"deleted the client of removed device {username}")
        for name in sorted(roles):
            if name.startswith(DEVICE_ROLE_PREFIX) and name.removeprefix(DEVICE_ROLE_PREFIX) not in devices:
                _checked(control.send([{"command": "deleteRole", "rolename": name}]), tolerated=("not found",))
                report.changes.append(f"deleted role {name}")
        if grant_platform:
            # Last: the broker closes the connection of a client whose roles change, this one included.
            if not dry_run:
                control.grant_self(PLATFORM_ROLE)
            report.changes.append(f"gave {settings.MQTT_PLATFORM_USERNAME} the role {PLATFORM_ROLE}")
    if grant_platform and not dry_run:
        with _control() as control:
            data = _checked(control.send([{"command": "getClient", "username": settings.MQTT_PLATFORM_USERNAME}]))
        if PLATFORM_ROLE not in {r["rolename"] for r in data[0].get("data", {}).get("client", {}).get("roles", [])}:
            raise BrokerError(f"The broker did not give {settings.MQTT_PLATFORM_USERNAME} the role {PLATFORM_ROLE}.")
    return report


def _dry_run_send(report: ReconcileReport):
    def send(commands: list[dict]) -> list[dict]:
        return [{"command": c["command"]} for c in commands]

    return send
