from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from audit import registry, signals

        registry.register_tracked_models()  # which models django-auditlog records, and without which fields
        signals.connect()
