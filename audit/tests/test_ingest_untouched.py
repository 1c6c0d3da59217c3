"""Telemetry ingest writes no audit entry and runs not one more query with the audit log installed."""

import pytest
from auditlog.context import disable_auditlog
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEntry
from conftest import assert_status
from devices.tests.factories import make_device, make_line, make_token


def post(client, token: str, n: int):
    body = {
        "messages": [
            {
                "ts": f"2026-12-06T10:00:{i:02d}Z",
                "values": {"temperature": 20.0 + i, "count_total": i},
                "state": "running",
            }
            for i in range(n)
        ]
    }
    response = client.post(
        "/api/v1/telemetry/", body, content_type="application/json", HTTP_AUTHORIZATION=f"Device {token}"
    )
    return assert_status(response, 202)


@pytest.mark.django_db(transaction=True)
def test_ingest_runs_the_same_queries_with_and_without_the_audit_log(client, plant_a):
    line = make_line(plant_a)
    warm, quiet, audited = (make_token(make_device(line))[1] for _ in range(3))
    post(client, warm, 20)  # the first batch creates the metrics and fills the process's metric cache
    entries = AuditEntry.objects.count()
    with disable_auditlog(), CaptureQueriesContext(connection) as without:
        post(client, quiet, 20)
    with CaptureQueriesContext(connection) as with_audit:
        post(client, audited, 20)
    assert AuditEntry.objects.count() == entries
    assert len(with_audit) == len(without)
    assert not [q["sql"] for q in with_audit if "audit" in q["sql"]]
