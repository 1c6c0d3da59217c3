"""Every plant page carries the plant's formats (factory/pages.py::plant_formats): the "plant-formats"
JSON that static/js/live.js formats values and times with, and a note naming the zone of its times."""

import json
import re

import pytest

from alerts.models import AlertRule
from conftest import assert_status
from devices.tests.factories import make_device, make_line, make_plant, make_user
from devices.tests.test_ingest_store import msg, store
from factory.tests.test_pages_nav import plant_pages

pytestmark = pytest.mark.django_db


@pytest.fixture
def berlin(db):
    plant = make_plant("Berlin works", time_zone="Europe/Berlin")
    press = make_device(make_line(plant, "Press line"), "press-01")
    store(press, msg(0, temperature=61.4, vibration=0.02, oil_temp=40.5))
    AlertRule.objects.create(plant=plant, name="Pressure high", metric="pressure", condition="gt", threshold=6.5)
    return plant, press


def formats_of(html: str) -> dict:
    found = re.search(r'<script id="plant-formats" type="application/json">(.*?)</script>', html, re.S)
    assert found, "no plant-formats JSON on the page"
    return json.loads(found.group(1))


def test_every_plant_page_names_its_zone_and_carries_how_its_metrics_read(client, berlin):
    plant, press = berlin
    client.force_login(make_user("berliner", plant=plant, role="viewer"))
    pages = {**plant_pages(plant.pk), "device": f"/devices/{press.pk}/"}
    for page, url in pages.items():
        html = assert_status(client.get(url), 200).content.decode()
        assert "Times: Europe/Berlin" in html, page
        assert formats_of(html) == {
            "tz": "Europe/Berlin",
            "metrics": {
                "oil_temp": {"label": "Oil temp", "unit": "", "precision": None},
                "pressure": {"label": "Pressure", "unit": "bar", "precision": 2},  # watched by a rule only
                "temperature": {"label": "Temperature", "unit": "°C", "precision": 1},
                "vibration": {"label": "Vibration", "unit": "mm/s", "precision": 3},
            },
        }, page


def test_leaves_out_another_plants_metrics(client, berlin):
    plant, _press = berlin
    other = make_plant("Lyon works", time_zone="Europe/Paris")
    store(make_device(make_line(other, "Line"), "lyon-01"), msg(0, reactor_flux=3.2))
    client.force_login(make_user("berliner", plant=plant, role="viewer"))
    html = assert_status(client.get(f"/plants/{plant.pk}/"), 200).content.decode()
    assert "reactor_flux" not in formats_of(html)["metrics"]
