"""The devices app's periodic tasks (installed by ``manage.py sync_schedules``, editable in the admin)."""

from factory.beat import Schedule

SCHEDULES = [
    Schedule("Telemetry: refresh rollups", "devices.tasks.refresh_rollups", every=10),
    Schedule("Devices: mark offline", "devices.tasks.mark_offline_devices", every=30),
    Schedule("Telemetry: enforce retention", "devices.tasks.enforce_retention", every=3600),
    Schedule("MQTT: purge dead letters", "devices.tasks.purge_dead_letters", every=86400),
]
