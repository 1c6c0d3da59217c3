"""How a rule's limit and an alarm's value read (alerts/display.py): e-mails, the admin, messages."""

import pytest

from alerts.display import alarm_value, metrics_named, rule_in_words, rule_limit
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
        ({"condition": "no_data", "no_data_seconds": 300, "metric": ""}, "no data for 5 min"),
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


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (
            {"condition": "lt", "threshold": 0.01, "clear_threshold": 0.02, "on_delay": 90},
            "Vibration < 0.01 mm/s for 1 min 30 s (clears above 0.02 mm/s)",
        ),
        (
            {"condition": "outside", "threshold": 2.5, "threshold_high": 6.25, "clear_threshold_high": 6.0,
             "metric": "pressure", "off_delay": 3600},
            "Pressure outside 2.5 bar – 6.25 bar (clears inside 2.5 bar – 6 bar after 1 h)",
        ),
        (
            {"condition": "rate", "threshold": 5.0, "metric": "temperature"},
            "Temperature changing by more than 5 °C/min",
        ),
        ({"condition": "gt", "threshold": 3.0, "metric": "", "on_delay": 0}, "Value > 3"),
        ({"condition": "no_data", "no_data_seconds": 300, "metric": "", "on_delay": 60}, "no data for 5 min"),
    ],
)  # fmt: skip
def test_says_the_whole_rule_in_words_around_the_same_limit_the_emails_show(fields, words):
    made = rule(**fields)
    metric = metrics_named([made.metric]).get(made.metric)
    assert rule_in_words(made, metric) == words
    assert rule_limit(made, metric) in words
