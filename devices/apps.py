from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"
    verbose_name = "Device registry"

    def ready(self):
        from devices import live
        from devices.signals import device_status_changed, telemetry_ingested

        # Live dashboard: both signals are sent after commit; the receivers only publish to the
        # channel layer (devices/live.py), never write.
        telemetry_ingested.connect(live.on_telemetry_ingested, dispatch_uid="live.telemetry")
        device_status_changed.connect(live.on_device_status_changed, dispatch_uid="live.status")
