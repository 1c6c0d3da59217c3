from rest_framework import serializers

from audit.models import AuditEntry


class AuditEntrySerializer(serializers.ModelSerializer):
    event = serializers.CharField(source="event_name", help_text="login_failed, token_revoked… or the model write")
    action = serializers.CharField(source="get_action_display", help_text="create, update, delete or access")
    object_type = serializers.SerializerMethodField(help_text="app.model, e.g. devices.device")
    object_id = serializers.CharField(source="object_pk")
    actor_username = serializers.CharField(source="actor.username", default=None, allow_null=True)
    changes = serializers.JSONField(help_text="field → [before, after]")
    data = serializers.JSONField(source="additional_data", allow_null=True)

    class Meta:
        model = AuditEntry
        fields = [
            "id", "timestamp", "plant", "event", "action", "object_type", "object_id", "object_repr", "actor",
            "actor_username", "actor_email", "remote_addr", "changes", "data",
        ]  # fmt: skip
        read_only_fields = fields

    def get_object_type(self, entry) -> str:
        return f"{entry.content_type.app_label}.{entry.content_type.model}"
