"""Every operation of ``/api/schema/`` answers what the schema says (schemathesis, bounded, reproducible).

Each operation runs as a superuser and as a viewer of plant A against Django in-process (WSGI),
inside the test's transaction: what an operation deletes or changes is rolled back before the
next one, so DELETE and the state-changing actions run too and cannot break the others. Path ids
are drawn from the schema or, as often, taken from the objects seeded in plant A (so the detail
views, actions and their bodies are reached, not only 404s).

Checks: no 5xx, every status code documented, the documented Content-Type, the body valid against
the response schema. Run alone: ``.venv/bin/pytest factory/tests/test_schema_conformance.py``.
"""

import json
from datetime import timedelta

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from django.test import override_settings
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from accounts.roles import Role
from accounts.services import api_key_issue, service_account_create
from alerts.services.alarms import alarm_acknowledge, alarm_raise
from alerts.tests.factories import make_channel, make_route, make_rule
from analytics.models import LossCategory, ReasonCode
from analytics.tests.factories import make_shift
from devices.services.provisioning import provisioning_key_create
from devices.tests.factories import make_device, make_group, make_line, make_plant, make_token, make_user
from firmware.tests.factories import make_image, make_rollout

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Per operation and persona. 280 cases of 8 examples take about a minute on 2 cores.
EXAMPLES = 8


def _served_schema() -> dict:
    """The schema ``/api/schema/`` serves, built without a request (no test database at collection)."""
    return json.loads(OpenApiJsonRenderer().render(SchemaGenerator().get_schema(request=None, public=True)))


# No coverage phase (hundreds of boundary cases per operation: minutes on 2 cores); valid and invalid
# inputs alike ("all"), drawn deterministically so a failure reproduces.
CONFIG = schemathesis.Config.from_dict(
    {"phases": {"coverage": {"enabled": False}}, "generation": {"mode": "all", "deterministic": True}}
)
schema = schemathesis.openapi.from_dict(_served_schema(), config=CONFIG)
schema.app = get_wsgi_application()

# The seeded objects of the running test, by the first path segment after /api/v1/.
SEEDED: dict[str, dict] = {}


_RESOURCES_WITH_IDS = {
    "plants", "lines", "devices", "device-tokens", "device-groups", "alert-rules", "alarms", "notification-channels",
    "notification-routes", "shifts", "reason-codes", "firmware", "rollouts", "provisioning-keys", "service-accounts",
    "api-keys", "users",
}  # fmt: skip


def _known_path_parameters(path: str) -> dict:
    resource = path.removeprefix("/api/v1/").split("/")[0]
    return dict(SEEDED.get(resource, {}))


@schema.hook
def before_generate_path_parameters(context, strategy):
    path = context.operation.path
    if "{" not in path or path.removeprefix("/api/v1/").split("/")[0] not in _RESOURCES_WITH_IDS:
        return strategy
    return st.one_of(st.builds(lambda: _known_path_parameters(path)), strategy)


@schema.hook
def flatmap_body(context, body):
    """Half the bodies name plant A's objects (``plant``, ``line``, ``device``…) instead of random ids."""
    if not isinstance(body, dict):
        return st.just(body)
    ids = SEEDED.get("_fields", {})
    return st.sampled_from([body, {**body, **{k: ids[k] for k in body if k in ids}}])


def _seed() -> dict:
    """Plant A with one of everything, its viewer and operator, plant B, a superuser; their bearer tokens."""
    plant_a = make_plant("Plant A")
    make_plant("Plant B")  # the foreign plant
    viewer = make_user("viewer", plant=plant_a, role=Role.VIEWER)
    operator = make_user("operator", plant=plant_a, role=Role.OPERATOR)
    superuser = make_user("root", is_superuser=True, is_staff=True)
    line = make_line(plant_a, "Press line")
    device = make_device(line, "press-001")
    token, _ = make_token(device)
    group = make_group(plant_a, "Presses", devices=[device])
    rule = make_rule(plant_a, name="Hot")
    now = timezone.now()
    alarm = alarm_raise(rule=rule, device=device, value=90.0, at=now - timedelta(minutes=5))
    alarm_acknowledge(alarm=alarm, by=operator, now=now)
    channel = make_channel(plant_a)
    route = make_route(channel)
    shift = make_shift(plant_a, breaks=[("09:00", "09:15")])
    reason = ReasonCode.objects.create(plant=plant_a, code="JAM", name="Jam", category=LossCategory.EQUIPMENT_FAILURE)
    image = make_image(plant_a, "2.0.0", content=b"firmware")
    rollout = make_rollout(plant_a, image)
    target = rollout.targets.get()
    key, _ = provisioning_key_create(plant=plant_a, name="Line 1")
    account = service_account_create(name="mes", plant=plant_a, role=Role.VIEWER)
    api_key, _ = api_key_issue(account=account, name="mes")
    return {
        "bearer": {
            name: f"Bearer {RefreshToken.for_user(user).access_token}"
            for name, user in (("superuser", superuser), ("viewer", viewer))
        },
        "plants": {"id": plant_a.pk, "user_id": viewer.pk},
        "lines": {"id": line.pk},
        "devices": {"id": device.pk},
        "device-tokens": {"id": token.pk},
        "device-groups": {"id": group.pk},
        "alert-rules": {"id": rule.pk},
        "alarms": {"id": alarm.pk},
        "notification-channels": {"id": channel.pk},
        "notification-routes": {"id": route.pk},
        "shifts": {"id": shift.pk},
        "reason-codes": {"id": reason.pk},
        "firmware": {"id": image.pk},
        "rollouts": {"id": rollout.pk, "target_id": target.pk},
        "provisioning-keys": {"id": key.pk},
        "service-accounts": {"id": account.pk},
        "api-keys": {"id": api_key.pk},
        "users": {"id": viewer.pk},
        "_fields": {
            "plant": plant_a.pk, "line": line.pk, "device": device.pk, "group": group.pk, "image": image.pk,
            "channel": channel.pk, "rule": rule.pk, "reason": reason.pk, "account": account.pk,
        },
    }  # fmt: skip


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker, tmp_path_factory):
    """Seeded once for the module inside a transaction that is rolled back at its end (as Django's
    ``TestCase.setUpTestData``); each test runs in a savepoint inside it, so what one operation
    deletes or changes is gone before the next (280 seedings cost more than the requests)."""
    # As Django's test client does: the real WSGI handler closes "obsolete" connections at each
    # request's start and end, and on MariaDB a connection inside a transaction is one (the
    # transaction would be gone: error 2006 on the next query; SQLite's in-memory one never closes).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    with (
        django_db_blocker.unblock(),
        override_settings(
            VAR_DIR=tmp_path_factory.mktemp("var"), PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]
        ),
    ):
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            SEEDED.update(_seed())
            yield SEEDED
        finally:
            SEEDED.clear()
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)


@pytest.fixture(params=["superuser", "viewer"])
def bearer(request, seeded, db):
    return seeded["bearer"][request.param]


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_operation_answers_as_documented(case, bearer):
    case.call_and_validate(headers={"Authorization": bearer}, checks=CHECKS)
