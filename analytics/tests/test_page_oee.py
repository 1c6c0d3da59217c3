"""The OEE page: members see their plant's machines; another plant is 404; it only draws from the API."""

import pytest

from conftest import assert_status
from devices.tests.factories import make_device, make_line

pytestmark = pytest.mark.django_db


def test_viewer_sees_the_oee_page_of_their_plant(plant_a, viewer, client_for):
    line = make_line(plant_a, "Stamping")
    make_device(line, "press-42")
    response = assert_status(client_for(viewer).get("/analytics/oee/", {"plant": plant_a.pk, "line": line.pk}), 200)
    page = response.content.decode()
    assert "press-42" in page and "Stamping" in page and "analytics/oee.js" in page and "uPlot.iife.min.js" in page
    assert 'data-can-classify="0"' in page


def test_operator_may_classify_and_another_plant_is_404(plant_a, plant_b, operator, outsider, client_for):
    page = assert_status(client_for(operator).get("/analytics/oee/"), 200).content.decode()
    assert 'data-can-classify="1"' in page
    assert_status(client_for(operator).get("/analytics/oee/", {"plant": plant_b.pk}), 404)
    assert "no role" in assert_status(client_for(outsider).get("/analytics/oee/"), 200).content.decode()
