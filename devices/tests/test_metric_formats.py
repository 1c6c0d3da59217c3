"""How metric values and times read (``devices/formats.py``): defaults for known metrics from ingest
and the data migration, the value/threshold/time formats and the template filters e-mails use."""

import importlib
from datetime import UTC, datetime

import pytest
from django.apps import apps
from django.db import connection
from django.template import Context, Template
from django.test.utils import CaptureQueriesContext

from devices.formats import decimals_of, format_number, format_threshold, format_time, format_value, rule_precision
from devices.models import Metric
from devices.tests.factories import make_plant
from devices.tests.test_ingest_store import msg, store

pytestmark = pytest.mark.django_db


@pytest.fixture
def device(db):
    from devices.tests.factories import make_device

    return make_device(uid="press-07")


def test_gives_known_metrics_their_unit_and_precision_when_ingest_creates_them(device):
    store(device, msg(0, temperature=61.43, vibration=0.0234, count_total=12, oil_temp=40))

    rows = {m.name: (m.label, m.unit, m.precision) for m in Metric.objects.all()}
    assert rows == {
        "temperature": ("Temperature", "°C", 1),
        "vibration": ("Vibration", "mm/s", 3),
        "count_total": ("Pieces made", "pcs", 0),
        "oil_temp": ("Oil temp", "", None),  # unknown: the name in words, automatic decimals
    }


def test_reads_no_metric_row_when_a_device_sends_known_metrics_again(device, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # ids are cached once their rows commit
        store(device, msg(0, temperature=61.4, power=12.5))
    with CaptureQueriesContext(connection) as queries:
        store(device, msg(1, temperature=61.5, power=12.6))
    assert not [q["sql"] for q in queries.captured_queries if "devices_metric" in q["sql"]]


def test_fills_blank_fields_of_existing_metrics_but_keeps_entered_ones_when_migrating():
    Metric.objects.bulk_create(
        [Metric(name="temperature"), Metric(name="power", unit="W", precision=0), Metric(name="oil_temp")]
    )
    migration = importlib.import_module("devices.migrations.0003_metric_display")

    migration.apply_defaults(apps, None)

    rows = {m.name: (m.display_name, m.unit, m.precision) for m in Metric.objects.all()}
    assert rows == {
        "temperature": ("Temperature", "°C", 1),
        "power": ("Power", "W", 0),  # someone's unit and precision stay
        "oil_temp": ("", "", None),
    }


@pytest.mark.parametrize(
    ("value", "meta", "expected"),
    [
        (61.43, {"unit": "°C", "precision": 1}, "61.4 °C"),
        (71.25, {"unit": "°C", "precision": 1}, "71.3 °C"),  # half away from zero, as the browser rounds
        (0.0634, {"unit": "mm/s", "precision": 3}, "0.063 mm/s"),
        (12345, {"unit": "pcs", "precision": 0}, "12,345 pcs"),
        (1.234, None, "1.23"),  # no metric: the automatic format
        (250.0, {"unit": "", "precision": None}, "250"),
        (-0.0004, {"unit": "", "precision": 2}, "0.00"),
        (None, {"unit": "°C", "precision": 1}, "—"),
    ],
)
def test_shows_values_with_their_unit_and_precision(value, meta, expected):
    assert format_value(value, meta) == expected


def test_shows_a_threshold_as_entered_and_alarm_values_with_at_least_its_decimals():
    vibration = {"unit": "mm/s", "precision": 1}
    assert format_threshold(0.06, vibration) == "0.06 mm/s"
    assert format_threshold(85.0, {"unit": "°C", "precision": 1}) == "85 °C"
    assert rule_precision(1, 0.06, 0.045) == 3
    assert format_value(0.0634, vibration, precision=rule_precision(1, 0.06)) == "0.06 mm/s"
    assert [decimals_of(x) for x in (0.06, 85.0, 100.0, 1e-05, 1e-9)] == [2, 0, 0, 5, 6]
    assert format_number(1234.5) == "1,234.5"


def test_shows_times_in_the_plant_zone():
    evening = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)
    assert format_time(evening, "Europe/Berlin") == "2026-12-06 21:00"
    assert format_time(datetime(2026, 7, 6, 20, 0, 7, tzinfo=UTC), "Europe/Berlin", date=False, seconds=True) == (
        "22:00:07"
    )


def test_template_filters_read_metrics_by_name_and_times_in_the_plant_zone(device):
    store(device, msg(0, vibration=0.05))
    plant = make_plant("Berlin works", time_zone="Europe/Berlin")
    template = Template(
        "{% load formats %}{{ value|metric_value:'vibration' }} over {{ limit|threshold_value:'vibration' }}"
        " at {{ when|plant_time:plant }}; {{ count|metric_value:'count_total' }}"
    )
    context = Context(
        {"value": 0.0634, "limit": 0.06, "when": datetime(2026, 12, 6, 20, 0, tzinfo=UTC), "plant": plant, "count": 7}
    )
    assert template.render(context) == "0.063 mm/s over 0.06 mm/s at 2026-12-06 21:00; 7 pcs"
