"""Zero-touch provisioning: plant provisioning keys, and devices registering themselves with one.

``POST /api/v1/device/provision/`` (CONTRACT.md): ``Authorization: Provision <key>`` and
``{"uid", "name", "kind", "model"}`` → 201 ``{"device", "uid", "token"}`` when the key approves by
itself; 202 ``{"status": "pending"}`` when a plant admin must approve first (the device asks again
later and then receives its token once); 401 for an unknown, expired, revoked or used-up key; 409
when the uid exists; 400 for bad fields; 429 over the rate limits per key and per address.
Every use with a valid key is recorded (``ProvisioningRequest``).
"""

from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import audit_record
from devices.models import Device, Line, Plant, ProvisioningKey, ProvisioningRequest
from devices.models.device import uid_validator
from devices.selectors import provisioning_pending_count
from devices.services.registry import device_create
from devices.services.tokens import credential_create, credential_matches, token_issue
from live.bus import publish

TOKEN_NAME = "provisioned"
FIELDS = ("uid", "name", "kind", "model")


@dataclass
class Answer:
    status: int
    body: dict
    retry_after: int | None = None


def _refuse(status: int, detail: str, **extra) -> Answer:
    return Answer(status, {"detail": detail, **extra})


def provisioning_key_create(
    *, plant: Plant, name: str, by=None, line: Line | None = None, model: str = "", needs_approval: bool = False,
    expires_at=None, max_uses: int | None = None,
) -> tuple[ProvisioningKey, str]:  # fmt: skip
    """Create a key; return the row and the plain key (the only time it exists)."""
    if line is not None and line.plant_id != plant.pk:
        raise ValidationError({"line": f"Line '{line.name}' is not in plant '{plant.name}'."})

    def build(prefix: str, key_hash: str) -> ProvisioningKey:
        return ProvisioningKey(
            plant=plant, line=line, model=model, name=name, prefix=prefix, key_hash=key_hash,
            needs_approval=needs_approval, expires_at=expires_at, max_uses=max_uses, created_by=by,
        )  # fmt: skip

    return credential_create(build)


def provisioning_key_revoke(*, key: ProvisioningKey) -> bool:
    """Revoke ``key`` now; False when it was revoked already. Registered devices keep their tokens."""
    updated = ProvisioningKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    key.refresh_from_db()
    if updated:
        audit_record(
            event="provisioning_key_revoked", obj=key, action=AuditEntry.Action.UPDATE,
            changes={"revoked_at": (None, key.revoked_at)},
        )  # fmt: skip
    return updated == 1


def _limited(scope: str, ident: str, limit: int) -> int | None:
    """Count one call in this minute's window; the seconds until the next window when over ``limit``."""
    if limit <= 0:
        return None
    now = timezone.now()
    name = f"provision:{scope}:{ident}:{now:%Y%m%d%H%M}"
    cache.add(name, 0, timeout=120)
    try:
        count = cache.incr(name)
    except ValueError:  # evicted between add and incr
        cache.set(name, 1, timeout=120)
        count = 1
    return None if count <= limit else 60 - now.second


def _validate(body, key: ProvisioningKey) -> tuple[dict, dict]:
    """The cleaned fields and the errors per field."""
    if not isinstance(body, dict):
        return {}, {"body": 'Send a JSON object: {"uid", "name", "kind", "model"}.'}
    errors, data = {}, {}
    for name in FIELDS:
        value = body.get(name)
        if not isinstance(value, str) or (name != "model" and not value.strip()):
            errors[name] = f"'{name}' is required as a string."
            continue
        data[name] = value.strip()
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        errors["body"] = f"Unknown field(s): {', '.join(unknown)}. Send only uid, name, kind and model."
    if "uid" in data:
        try:
            uid_validator(data["uid"])
        except ValidationError as exc:
            errors["uid"] = exc.messages[0]
    if "name" in data and len(data["name"]) > 100:
        errors["name"] = "At most 100 characters."
    if "kind" in data and data["kind"] not in Device.Kind.values:
        errors["kind"] = f"One of {', '.join(Device.Kind.values)}."
    if "model" in data:
        if len(data["model"]) > 100:
            errors["model"] = "At most 100 characters."
        elif key.model and data["model"] != key.model:
            errors["model"] = f"This key registers only devices of model '{key.model}'."
    return data, errors


def _record(key, data: dict, status: str, address, detail: str = "", device=None) -> ProvisioningRequest:
    return ProvisioningRequest.objects.create(
        key=key, uid=str(data.get("uid", ""))[:64], name=str(data.get("name", ""))[:100],
        kind=str(data.get("kind", ""))[:16], model=str(data.get("model", ""))[:100], status=status,
        detail=detail[:500], address=address, device=device,
    )  # fmt: skip


def device_provision(*, authorization: str, body, address: str | None) -> Answer:
    """Handle one call of the device provisioning endpoint; see the module docstring."""
    scheme, _, plain = authorization.partition(" ")
    plain = plain.strip()
    if scheme.lower() != "provision" or not plain:
        return _refuse(401, "Send the plant's provisioning key as 'Authorization: Provision <key>'.")
    wait = _limited("address", address or "?", settings.PROVISION_RATE_PER_ADDRESS)
    if wait is not None:
        return Answer(429, {"detail": f"Too many provisioning calls from this address; retry in {wait} s."}, wait)
    prefix, dot, _ = plain.partition(".")
    key = ProvisioningKey.objects.select_related("plant", "line").filter(prefix=prefix).first() if dot else None
    if key is None or not credential_matches(plain, key.key_hash):
        return _refuse(401, "Unknown provisioning key. Check it, or ask a plant admin for one.")
    now = timezone.now()
    refusal = key.refusal(now)
    if refusal:
        return _refuse(401, refusal)
    wait = _limited("key", str(key.pk), settings.PROVISION_RATE_PER_KEY)
    if wait is not None:
        return Answer(429, {"detail": f"Too many provisioning calls with this key; retry in {wait} s."}, wait)
    ProvisioningKey.objects.filter(pk=key.pk).update(last_used_at=now)

    data, errors = _validate(body, key)
    if errors:
        _record(key, data or (body if isinstance(body, dict) else {}), ProvisioningRequest.Status.INVALID, address,
                detail="; ".join(f"{k}: {v}" for k, v in errors.items()))  # fmt: skip
        return _refuse(400, "Invalid fields: " + ", ".join(sorted(errors)) + ".", errors=errors)
    return _provision(key, data, address)


@transaction.atomic
def _provision(key: ProvisioningKey, data: dict, address) -> Answer:
    uid = data["uid"]
    Status = ProvisioningRequest.Status
    earlier = (
        ProvisioningRequest.objects.select_for_update()
        .filter(key=key, uid=uid, status__in=[Status.PENDING, Status.APPROVED, Status.REJECTED])
        .order_by("-created_at", "-pk")
        .first()
    )
    if earlier is not None and earlier.status == Status.PENDING:
        return Answer(202, {"status": "pending", "detail": "A plant admin has not approved this device yet."})
    if earlier is not None and earlier.status == Status.REJECTED:
        # Refused like a key that no longer works for this device: asking again neither uses the
        # key nor puts the device back in the list (a plant admin would have to reject it each time).
        return _refuse(401, f"A plant admin rejected device '{uid}' for this key; ask them for another key.")
    if earlier is not None and earlier.device_id is not None:  # approved: the device collects its token once
        device = Device.objects.get(pk=earlier.device_id)
        _, token = token_issue(device=device, name=TOKEN_NAME)
        earlier.status = ProvisioningRequest.Status.DELIVERED
        earlier.save(update_fields=["status"])
        return Answer(201, {"device": device.pk, "uid": device.uid, "token": token})
    if Device.objects.filter(uid=uid).exists():
        _record(key, data, ProvisioningRequest.Status.CONFLICT, address, detail="The uid exists.")
        return _refuse(409, f"A device with uid '{uid}' exists; a provisioning key does not issue it another token.")
    claimed = ProvisioningKey.objects.filter(Q(max_uses__isnull=True) | Q(uses__lt=F("max_uses")), pk=key.pk).update(
        uses=F("uses") + 1
    )
    if not claimed:
        return _refuse(401, f"Provisioning key '{key.name}' has registered its {key.max_uses} device(s).")
    if key.needs_approval:
        _record(key, data, ProvisioningRequest.Status.PENDING, address)
        _announce_pending(key.plant_id)
        return Answer(202, {"status": "pending", "detail": "A plant admin must approve this device; ask again later."})
    device = _create_device(key, data)
    _, token = token_issue(device=device, name=TOKEN_NAME)
    _record(key, data, ProvisioningRequest.Status.DELIVERED, address, device=device)
    return Answer(201, {"device": device.pk, "uid": device.uid, "token": token})


def _announce_pending(plant_id: int) -> None:
    """After commit, tell the plant's browsers the approval list changed (its new length only: the
    stream reaches viewers too, and the list itself is for plant admins)."""

    def send():
        publish(plant_id=plant_id, event={"kind": "provisioning", "pending": provisioning_pending_count(plant_id)})

    transaction.on_commit(send)


def _create_device(key: ProvisioningKey, data: dict) -> Device:
    return device_create(
        uid=data["uid"], name=data["name"], kind=data["kind"], model=data["model"] or key.model,
        plant=key.plant, line=key.line,
        ideal_cycle_time=None,
    )  # fmt: skip


@transaction.atomic
def provisioning_request_decide(*, request: ProvisioningRequest, approve: bool, by=None) -> ProvisioningRequest:
    """Approve (the device is created now; it collects its token on its next call) or reject (its
    next call answers 401) a pending request. Raises ``ValidationError`` when it is not pending or
    the uid was taken since. Used by the API, the admin and the approvals page alike."""
    requests = ProvisioningRequest.objects.select_for_update().select_related("key__plant", "key__line")
    current = requests.get(pk=request.pk)
    if current.status != ProvisioningRequest.Status.PENDING:
        raise ValidationError(f"This request is {current.get_status_display().lower()}, not waiting for approval.")
    current.decided_at, current.decided_by = timezone.now(), by
    if approve:
        if Device.objects.filter(uid=current.uid).exists():
            raise ValidationError(f"A device with uid '{current.uid}' exists now; reject this request.")
        current.device = _create_device(current.key, {f: getattr(current, f) for f in FIELDS})
        current.status = ProvisioningRequest.Status.APPROVED
    else:
        current.status = ProvisioningRequest.Status.REJECTED
    current.save()
    _announce_pending(current.key.plant_id)
    return current
