from alerts.models.alarm import Alarm, AlarmEvent
from alerts.models.notification import Delivery, NotificationChannel, NotificationMute, NotificationRoute
from alerts.models.rule import SEVERITY_RANK, AlertRule, RuleState, Severity

__all__ = [
    "SEVERITY_RANK",
    "Alarm",
    "AlarmEvent",
    "AlertRule",
    "Delivery",
    "NotificationChannel",
    "NotificationMute",
    "NotificationRoute",
    "RuleState",
    "Severity",
]
