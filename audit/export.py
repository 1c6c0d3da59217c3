"""Audit entries as CSV (the admin action and ``GET /api/v1/audit/export/``), streamed in chunks."""

import csv
import io
import json

from django.utils import timezone

HEADER = (
    "timestamp", "plant_id", "plant", "event", "action", "object_type", "object_id", "object",
    "actor", "actor_email", "remote_addr", "changes", "data",
)  # fmt: skip

CHUNK = 2000


def _row(entry) -> tuple:
    return (
        entry.timestamp.isoformat(),
        entry.plant_id or "",
        _safe(entry.plant.name) if entry.plant_id and entry.plant else "",
        entry.event_name,
        entry.get_action_display(),
        f"{entry.content_type.app_label}.{entry.content_type.model}",
        entry.object_pk,
        _safe(entry.object_repr),
        _safe(entry.actor.username) if entry.actor_id else "",
        _safe(entry.actor_email or ""),
        entry.remote_addr or "",
        _safe(json.dumps(entry.changes or {}, sort_keys=True, ensure_ascii=False)),
        _safe(json.dumps(entry.additional_data, sort_keys=True, ensure_ascii=False) if entry.additional_data else ""),
    )


def _safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (names and values come from users)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def audit_csv_lines(entries):
    """CSV text blocks for ``entries`` (a queryset with actor, content type and plant loaded)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    rows = []
    for entry in entries.iterator(chunk_size=CHUNK):
        rows.append(_row(entry))
        if len(rows) == CHUNK:
            writer.writerows(rows)
            rows.clear()
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    writer.writerows(rows)
    yield buffer.getvalue()


def audit_csv_name() -> str:
    return f"audit-{timezone.now():%Y%m%dT%H%M%SZ}.csv"
