from django.apps import AppConfig


class SimulatorConfig(AppConfig):
    """A believable factory that sends telemetry like real devices (``manage.py simulate``)."""

    name = "simulator"
    verbose_name = "Plant simulator"
