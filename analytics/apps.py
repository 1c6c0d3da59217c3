from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"

    def ready(self):
        from django.db.models.signals import pre_save

        from analytics.signals import mark_late_days_stale, record_ideal_cycle_time_change
        from devices.models import Device
        from devices.signals import telemetry_ingested

        # Keep the ideal cycle time's history when a machine is edited (API, admin).
        pre_save.connect(record_ideal_cycle_time_change, sender=Device, dispatch_uid="analytics_ideal_cycle_time")
        # Late telemetry makes stored OEE days stale (recomputed on the next read).
        telemetry_ingested.connect(mark_late_days_stale, dispatch_uid="analytics_late_days")
