from rest_framework import serializers


class StrictSerializerMixin:
    """Reject fields the serializer does not know instead of silently ignoring them.

    A typo such as ``"ideal_cyle_time"`` would otherwise be accepted and lose the value.
    """

    def to_internal_value(self, data):
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data) - writable)
            if unknown:
                known = ", ".join(sorted(writable))
                raise serializers.ValidationError(
                    {name: [f"Unknown or read-only field. Writable fields: {known}."] for name in unknown}
                )
        return super().to_internal_value(data)
