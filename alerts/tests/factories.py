"""Plain-function factories for alerts (factory_boy cannot be imported: our ``factory`` package shadows it)."""

import itertools
from datetime import UTC, datetime, timedelta

from alerts.models import AlertRule, NotificationChannel, NotificationRoute
from devices.services.ingest import IngestItem, telemetry_store
from devices.services.telemetry_payload import Message

_seq = itertools.count(1)
T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def make_rule(plant, **fields) -> AlertRule:
    defaults = {
        "name": f"Rule {next(_seq)}",
        "scope": AlertRule.Scope.PLANT,
        "metric": "temperature",
        "condition": AlertRule.Condition.GT,
        "threshold": 80.0,
        "severity": "warning",
        "action": "Check the cooling.",
    }
    rule = AlertRule(plant=plant, **{**defaults, **fields})
    rule.full_clean()
    rule.save()
    return rule


def make_channel(plant, kind: str = "email", config: dict | None = None, **fields) -> NotificationChannel:
    config = {"to": ["oncall@example.com"]} if config is None and kind == "email" else (config or {})
    return NotificationChannel.objects.create(
        plant=plant, name=fields.pop("name", f"{kind} {next(_seq)}"), kind=kind, config=config, **fields
    )


def make_route(channel, severities=("critical", "warning", "info"), **fields) -> NotificationRoute:
    users = fields.pop("users", [])
    route = NotificationRoute.objects.create(
        plant=channel.plant, channel=channel, severities=list(severities), **fields
    )
    route.users.set(users)
    return route


def post_readings(device, *samples, state_samples=()) -> int:
    """Store readings through the real ingest service: ``(seconds, value)`` for temperature."""
    messages = [Message(ts=at(s), values={"temperature": float(v)}, state=None) for s, v in samples]
    messages += [Message(ts=at(s), values={}, state=state) for s, state in state_samples]
    return telemetry_store([IngestItem(device=device, messages=messages)], received_at=at(3600))
