from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"

    def ready(self):
        from analytics.signals import mark_late_days_stale
        from devices.signals import telemetry_ingested

        # Late telemetry makes stored OEE days stale (recomputed on the next read).
        telemetry_ingested.connect(mark_late_days_stale, dispatch_uid="analytics_late_days")
