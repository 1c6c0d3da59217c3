from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from alerts.signals import on_telemetry_ingested
        from devices.signals import telemetry_ingested

        # Readings committed → evaluate the rules of their devices, in a Celery task (never inline).
        telemetry_ingested.connect(on_telemetry_ingested, dispatch_uid="alerts.evaluate_on_ingest")
