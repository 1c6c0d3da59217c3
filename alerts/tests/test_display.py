"""How a rule's limit and an alarm's value read (alerts/display.py): e-mails, the admin, messages."""

import pytest

from alerts.display import alarm_value, metrics_named, rule_limit
from alerts.models import AlertRule
from devices.models import Metric

pytestmark = pytest.mark.django_db


def rule(**fields) -> AlertRule:
    return AlertRule(name="r", metric=fields.pop("metric", "vibration"), **fields)


@pytest.mark.parametrize(
    ("fields", "limit"),
    [
        ({"condition": "gt", "threshold": 0.06}, "> 0.06 mm/s"),
        ({"condition": "lte", "threshold": 2.0, "metric": "pressure"}, "≤ 2 bar"),
        (
            {"condition": "outside", "threshold": 2.5, "threshold_high": 6.25, "metric": "pressure"},
            "outside 2.5 bar – 6.25 bar",
        ),
        ({"condition": "rate", "threshold": 5.0, "metric": "temperature"}, "changing by more than 5 °C/min"),
        ({"condition": "no_data", "no_data_seconds": 300, "metric": ""}, "no data for 300 s"),
        ({"condition": "state", "state": "planned_stop", "metric": ""}, "machine planned stop"),
    ],
)
def test_says_each_kind_of_limit_in_words_with_its_unit(fields, limit):
    made = rule(**fields)
    assert rule_limit(made, metrics_named([made.metric]).get(made.metric)) == limit


def test_shows_alarm_values_with_the_edited_unit_and_never_fewer_decimals_than_the_threshold():
    Metric.objects.create(name="vibration", display_name="Vibration", unit="g", precision=1)
    vibration = metrics_named(["vibration", ""])["vibration"]
    made = rule(condition="gt", threshold=0.06, clear_threshold=0.045)
    assert alarm_value(0.0634, made, vibration) == "0.063 g"  # the 0.045 deadband has 3 decimals
    assert alarm_value(None, made, vibration) == ""
    assert rule_limit(made, vibration) == "> 0.06 g"
