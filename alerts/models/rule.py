"""Alert rules and their per-device evaluation state (STYLE.md §5)."""

from django.core.exceptions import ValidationError
from django.db import models

from devices.models import MachineState


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    WARNING = "warning", "Warning"
    INFO = "info", "Info"


SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


class AlertRule(models.Model):
    """When a device's metric (or machine state, or silence) is abnormal, and what to do about it.

    Thresholds: ``threshold`` (and ``threshold_high`` for a band). Deadband: ``clear_threshold``
    (and ``clear_threshold_high``) is where an active alarm returns to normal; it must lie on the
    normal side of the threshold. Delays are in seconds.
    """

    class Scope(models.TextChoices):
        PLANT = "plant", "Whole plant"
        LINE = "line", "Line"
        GROUP = "group", "Device group"
        DEVICE = "device", "Device"

    class Condition(models.TextChoices):
        # Labels in words (admin lists, filters and forms); ``alerts.display.rule_in_words`` puts in the values.
        GT = "gt", "Value above the threshold"
        GTE = "gte", "Value at or above the threshold"
        LT = "lt", "Value below the threshold"
        LTE = "lte", "Value at or below the threshold"
        OUTSIDE = "outside", "Value outside the band (threshold to threshold high)"
        RATE = "rate", "Value changes faster than the threshold per minute"
        NO_DATA = "no_data", "No data for the set number of seconds"
        STATE = "state", "Machine in the chosen state"

    plant = models.ForeignKey("devices.Plant", on_delete=models.PROTECT, related_name="alert_rules")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    action = models.TextField(blank=True, help_text="What the operator should do when this alarm is raised.")
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.PLANT)
    line = models.ForeignKey("devices.Line", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    group = models.ForeignKey("devices.DeviceGroup", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    device_model = models.CharField(
        max_length=100, blank=True, help_text="Only devices of this hardware model (empty: any)."
    )
    metric = models.CharField(max_length=63, blank=True, help_text="Metric name; empty for state rules.")
    condition = models.CharField(max_length=8, choices=Condition.choices)
    threshold = models.FloatField(null=True, blank=True)
    threshold_high = models.FloatField(null=True, blank=True, help_text="Upper bound of the band (outside).")
    clear_threshold = models.FloatField(null=True, blank=True, help_text="Deadband: clears only past this value.")
    clear_threshold_high = models.FloatField(null=True, blank=True, help_text="Deadband of the band's upper bound.")
    state = models.CharField(max_length=16, blank=True, choices=MachineState.State.choices)
    no_data_seconds = models.PositiveIntegerField(null=True, blank=True)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.WARNING)
    on_delay = models.PositiveIntegerField(default=0, help_text="Seconds the condition must hold before raising.")
    off_delay = models.PositiveIntegerField(default=0, help_text="Seconds it must be normal before clearing.")
    realarm_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Repeat notifications at this interval while unacknowledged."
    )
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["plant_id", "name"]
        constraints = [models.UniqueConstraint(fields=["plant", "name"], name="alertrule_unique_name_per_plant")]
        indexes = [models.Index(fields=["plant", "enabled"], name="alertrule_plant_enabled")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        self._clean_scope(errors)
        self._clean_condition(errors)
        if errors:
            raise ValidationError(errors)

    def _clean_scope(self, errors: dict) -> None:
        targets = {self.Scope.LINE: "line", self.Scope.GROUP: "group", self.Scope.DEVICE: "device"}
        for scope, field in targets.items():
            value = getattr(self, field)
            if self.scope == scope and value is None:
                errors[field] = f"Scope '{scope}' needs a {field}."
            elif self.scope != scope and value is not None:
                errors[field] = f"Only for scope '{scope}'; this rule's scope is '{self.scope}'."
            elif value is not None and self.plant_id is not None and value.plant_id != self.plant_id:
                errors[field] = f"This {field} belongs to another plant than the rule."

    def _clean_condition(self, errors: dict) -> None:
        numeric = self.condition in (
            self.Condition.GT,
            self.Condition.GTE,
            self.Condition.LT,
            self.Condition.LTE,
            self.Condition.OUTSIDE,
            self.Condition.RATE,
        )
        if self.condition == self.Condition.STATE and self.metric:
            errors["metric"] = "State rules watch the machine state, not a metric: leave metric empty."
        if numeric and not self.metric:
            errors["metric"] = "This condition needs a metric name."
        if numeric and self.threshold is None:
            errors["threshold"] = "This condition needs a threshold."
        if self.condition == self.Condition.STATE and not self.state:
            errors["state"] = "A state rule needs the state to watch (e.g. 'down')."
        if self.condition == self.Condition.NO_DATA and not self.no_data_seconds:
            errors["no_data_seconds"] = "A no-data rule needs the silence in seconds."
        if self.condition == self.Condition.RATE and self.threshold is not None and self.threshold <= 0:
            errors["threshold"] = "A rate threshold is a positive change per minute."
        if self.condition == self.Condition.OUTSIDE:
            self._clean_band(errors)
        elif self.threshold_high is not None or self.clear_threshold_high is not None:
            errors["threshold_high"] = "Only for the 'outside' condition."
        if self.clear_threshold is not None and self.threshold is not None and self.condition != self.Condition.OUTSIDE:
            below = self.condition in (self.Condition.GT, self.Condition.GTE, self.Condition.RATE)
            if below and self.clear_threshold > self.threshold:
                errors["clear_threshold"] = f"The deadband must be on the normal side: at most {self.threshold}."
            if not below and self.clear_threshold < self.threshold:
                errors["clear_threshold"] = f"The deadband must be on the normal side: at least {self.threshold}."
        if self.clear_threshold is not None and not numeric:
            errors["clear_threshold"] = "Only for threshold conditions."

    def _clean_band(self, errors: dict) -> None:
        low, high = self.threshold, self.threshold_high
        if high is None:
            errors["threshold_high"] = "The 'outside' condition needs the band's upper bound."
            return
        if low is not None and high <= low:
            errors["threshold_high"] = "Must be greater than threshold (the band's lower bound)."
            return
        clear_low = low if self.clear_threshold is None else self.clear_threshold
        clear_high = high if self.clear_threshold_high is None else self.clear_threshold_high
        if low is not None and not low <= clear_low <= clear_high:
            errors["clear_threshold"] = f"The deadband must lie inside the band, between {low} and the upper clear."
        if not clear_low <= clear_high <= high:
            errors["clear_threshold_high"] = f"The deadband must lie inside the band, at most {high}."

    def applies_to(self, device, group_ids: set[int]) -> bool:
        """Whether ``device`` (with the ids of its groups) is in this rule's scope."""
        if device.plant_id != self.plant_id:
            return False
        if self.device_model and device.model.lower() != self.device_model.lower():
            return False
        if self.scope == self.Scope.DEVICE:
            return device.pk == self.device_id
        if self.scope == self.Scope.LINE:
            return device.line_id == self.line_id
        if self.scope == self.Scope.GROUP:
            return self.group_id in group_ids
        return True


class RuleState(models.Model):
    """Where one rule stands for one device: survives worker restarts, makes re-evaluation a no-op.

    ``last_ts`` is the newest sample evaluated: older or equal samples are skipped, so evaluating
    the same readings twice changes nothing. ``since`` is when the current status began.
    """

    class Status(models.TextChoices):
        OK = "ok"
        PENDING = "pending", "Pending (on-delay running)"
        FIRING = "firing"
        CLEARING = "clearing", "Clearing (off-delay running)"

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="states")
    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OK)
    since = models.DateTimeField(null=True, blank=True)
    last_ts = models.DateTimeField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["rule", "device"], name="rulestate_unique_rule_device")]
        indexes = [models.Index(fields=["status"], name="rulestate_status")]

    def __str__(self) -> str:
        return f"{self.rule} / {self.device_id}: {self.status}"
