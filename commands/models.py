"""Commands to devices: the catalogue per hardware model, each command sent and its history.

A command goes ``pending`` (created) → ``delivered`` (handed to the device: a poll returned it,
its WebSocket got it, or the broker accepted it on its commands topic) → ``succeeded`` | ``failed``
(the device's result) or ``expired`` (no result before ``expires_at``). Every change writes a
``CommandEvent``; transitions are conditional UPDATEs (``commands.services``), so two deliveries or
a result racing the expiry task change a command once.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

name_validator = RegexValidator(
    r"^[a-z][a-z0-9_]{0,62}\Z",
    "Use 1-63 lowercase letters, digits or '_', starting with a letter (e.g. reset_counter).",
)
# Sent by rollouts (firmware app), never from the catalogue.
RESERVED_NAMES = ("firmware_update", "firmware_cancel")


def default_schema() -> dict:
    return {"type": "object", "properties": {}, "additionalProperties": False}


class CommandDefinition(models.Model):
    """One command the devices of a hardware model accept: its parameters (a JSON schema) and the
    plant role needed to send it. An empty ``model`` offers it to every model; a definition for
    the device's own model wins over it."""

    class Role(models.TextChoices):
        OPERATOR = "operator", "Operator"
        ADMIN = "admin", "Admin"

    model = models.CharField(
        "hardware model", max_length=100, blank=True, help_text="Device model it applies to; empty: every model."
    )
    name = models.CharField(max_length=63, validators=[name_validator])
    label = models.CharField(max_length=100, blank=True, help_text="What the machine page's button says.")
    description = models.TextField(blank=True)
    params_schema = models.JSONField(
        "parameters schema",
        default=default_schema,
        help_text='JSON Schema (2020-12) of the parameters object, e.g. {"type": "object", "properties": '
        '{"value": {"type": "number", "minimum": 0}}, "required": ["value"]}.',
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.OPERATOR)
    default_timeout = models.PositiveIntegerField(
        default=300,
        validators=[MinValueValidator(1), MaxValueValidator(7 * 24 * 3600)],
        help_text="Seconds a device has to answer when the sender gives no time-out.",
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model", "name"]
        constraints = [models.UniqueConstraint(fields=["model", "name"], name="commanddefinition_unique_per_model")]

    def __str__(self) -> str:
        return f"{self.name} ({self.model or 'every model'})"

    def clean(self) -> None:
        if self.name in RESERVED_NAMES:
            raise ValidationError({"name": f"'{self.name}' is sent by firmware rollouts; choose another name."})
        if not isinstance(self.params_schema, dict) or self.params_schema.get("type") != "object":
            raise ValidationError(
                {"params_schema": 'The parameters schema must describe an object: {"type": "object", ...}.'}
            )
        try:
            Draft202012Validator.check_schema(self.params_schema)
        except SchemaError as exc:
            raise ValidationError({"params_schema": f"Not a valid JSON schema: {exc.message}"}) from None


class Command(models.Model):
    """One command sent to one device, its state and the device's result."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"

    OPEN = (State.PENDING, State.DELIVERED)
    FINISHED = (State.SUCCEEDED, State.FAILED, State.EXPIRED)

    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="commands")
    name = models.CharField(max_length=63)
    params = models.JSONField(default=dict, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    # What a firmware command stands for (rollout target id); None for catalogue commands.
    update_id = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["device", "state"], name="command_device_state"),
            models.Index(fields=["state", "expires_at"], name="command_state_expiry"),
            models.Index(fields=["device", "-created_at"], name="command_device_recent"),
        ]
        constraints = [
            # One record per firmware push of an update (NULL update ids never collide).
            models.UniqueConstraint(fields=["update_id", "name"], name="command_unique_firmware_push"),
        ]

    def __str__(self) -> str:
        return f"{self.name} → {self.device_id} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN


class CommandEvent(models.Model):
    """History of a command: every state it went through, when, by whom or over which transport."""

    class Via(models.TextChoices):
        API = "api", "API"
        HTTP = "http", "HTTP poll"
        MQTT = "mqtt", "MQTT"
        WEBSOCKET = "websocket", "WebSocket"
        EXPIRY = "expiry", "Expiry"
        FIRMWARE = "firmware", "Firmware rollout"

    command = models.ForeignKey(Command, on_delete=models.CASCADE, related_name="events")
    state = models.CharField(max_length=16, choices=Command.State.choices)
    at = models.DateTimeField()
    via = models.CharField(max_length=16, choices=Via.choices)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.state} at {self.at:%Y-%m-%d %H:%M:%S} ({self.via})"
