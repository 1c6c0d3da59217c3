from django.apps import AppConfig


class LiveConfig(AppConfig):
    name = "live"
    verbose_name = "Live bus"

    def ready(self):
        from alerts.signals import alarm_changed
        from devices.signals import device_status_changed, telemetry_ingested
        from firmware.signals import rollout_progressed
        from live import receivers

        # Readings committed → a telemetry event per device to the plant's browsers.
        telemetry_ingested.connect(receivers.on_telemetry_ingested, dispatch_uid="live.telemetry")
        # Devices went on/offline (ingest, the offline sweep) → a status event per device.
        device_status_changed.connect(receivers.on_device_status_changed, dispatch_uid="live.status")
        # An alarm transition committed → its alarm event (console, toasts).
        alarm_changed.connect(receivers.on_alarm_changed, dispatch_uid="live.alarm")
        # A rollout or one of its targets changed → the rollout's snapshot, throttled by the bus.
        rollout_progressed.connect(receivers.on_rollout_progressed, dispatch_uid="live.rollout")
