from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from alerts.models import AlertRule
        from alerts.signals import on_rule_changed, on_telemetry_ingested
        from devices.signals import telemetry_ingested

        # Readings committed → evaluate the rules of their devices, in a Celery task (never inline).
        telemetry_ingested.connect(on_telemetry_ingested, dispatch_uid="alerts.evaluate_on_ingest")
        # ... when a rule may watch them: a changed rule clears what alerts.watch remembers.
        post_save.connect(on_rule_changed, sender=AlertRule, dispatch_uid="alerts.watch.saved")
        post_delete.connect(on_rule_changed, sender=AlertRule, dispatch_uid="alerts.watch.deleted")
