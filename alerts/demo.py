"""Demo alert rules and channels for ``manage.py seed_demo``: the simulator's breakdowns raise alarms."""

from alerts.models import AlertRule, NotificationChannel, NotificationRoute

# name, fields: the simulator's machines wear before a breakdown (vibration up to ~6x, hotter),
# then go ``down`` for a repair. Healthy machines vibrate at 0.015-0.03 (sensors at ~0.01, bursts
# ~0.04): 0.06 is crossed only by a wearing machine, a minute or two before it breaks down.
RULES = [
    ("Machine down", {"metric": "", "condition": "state", "state": "down", "on_delay": 120, "severity": "critical",
                      "action": "Check the machine and call maintenance; classify the stop."}),
    ("Vibration high", {"metric": "vibration", "condition": "gt", "threshold": 0.06, "clear_threshold": 0.045,
                        "on_delay": 20, "off_delay": 30, "severity": "warning", "realarm_seconds": 1800,
                        "action": "Inspect bearings and tooling; plan a stop before it breaks down."}),
    ("Temperature high", {"metric": "temperature", "condition": "gt", "threshold": 85, "clear_threshold": 80,
                          "on_delay": 30, "severity": "warning", "action": "Check cooling and lubrication."}),
    ("No data", {"metric": "", "condition": "no_data", "no_data_seconds": 300, "severity": "info",
                 "action": "Check the device's power and network."}),
]  # fmt: skip


def demo_seed(*, plant) -> int:
    """Create the demo rules, an in-app and an e-mail channel with routes (idempotent); return how many rows."""
    created = 0
    for name, fields in RULES:
        if not AlertRule.objects.filter(plant=plant, name=name).exists():
            rule = AlertRule(plant=plant, name=name, scope=AlertRule.Scope.PLANT, **fields)
            rule.full_clean()
            rule.save()
            created += 1
    channels = [
        ("Dashboard toasts", "inapp", {}, ["critical", "warning"], ["operator", "admin"], 0),
        ("Shift e-mail", "email", {}, ["critical", "warning"], ["operator"], 0),
        ("Manager escalation", "email", {}, ["critical"], ["admin"], 10),
    ]
    for name, kind, config, severities, roles, delay in channels:
        channel, new = NotificationChannel.objects.get_or_create(
            plant=plant, name=name, defaults={"kind": kind, "config": config}
        )
        if new:
            NotificationRoute.objects.create(
                plant=plant, channel=channel, severities=severities, roles=roles, delay_minutes=delay
            )
            created += 1
    return created
