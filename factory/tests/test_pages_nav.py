"""The plant bar of every plant page (templates/plant_base.html, factory/pages.py): it links to the
plant's five pages with the current one marked, each link answers 200 to a member and 404 to an
outsider, and the plant switcher leads to the same page of the chosen plant."""

from html.parser import HTMLParser

import pytest

from accounts.roles import Role
from accounts.services import member_set_role
from conftest import assert_status
from devices.tests.factories import make_device, make_line, make_user

pytestmark = pytest.mark.django_db

LABELS = ["Overview", "Alarms", "Alarm KPIs", "OEE", "Rollouts"]


class PlantBar(HTMLParser):
    """The links (href, aria-current, text) and the switcher's options (value, data-url) of
    ``<nav class="plantbar">``."""

    def __init__(self, html: str):
        super().__init__()
        self.inside = False
        self.links, self.options = [], []
        self._link = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "nav" and attrs.get("class") == "plantbar":
            self.inside = True
        elif self.inside and tag == "a":
            self._link = [attrs["href"], attrs.get("aria-current"), ""]
        elif self.inside and tag == "option":
            self.options.append((int(attrs["value"]), attrs["data-url"]))

    def handle_data(self, data):
        if self._link is not None:
            self._link[2] += data

    def handle_endtag(self, tag):
        if tag == "a" and self._link is not None:
            self.links.append(tuple(self._link))
            self._link = None
        elif tag == "nav":
            self.inside = False


def plant_pages(plant_id: int) -> dict[str, str]:
    return {
        "overview": f"/plants/{plant_id}/",
        "alarms": f"/plants/{plant_id}/alarms/",
        "alarm_kpis": f"/alarms/kpis/?plant={plant_id}",
        "oee": f"/analytics/oee/?plant={plant_id}",
        "rollouts": f"/plants/{plant_id}/rollouts/",
    }


@pytest.fixture
def press(plant_a):
    return make_device(make_line(plant_a, "Press line"), "press-01")


@pytest.mark.parametrize("page", ["overview", "alarms", "alarm_kpis", "oee", "rollouts", "device"])
def test_every_plant_page_links_to_the_plants_five_pages_and_marks_the_current_one(
    client_for, viewer, plant_a, press, page
):
    pages = plant_pages(plant_a.pk)
    url = f"/devices/{press.pk}/" if page == "device" else pages[page]
    bar = PlantBar(assert_status(client_for(viewer).get(url), 200).content.decode())
    expected = list(zip(pages.values(), LABELS, strict=True))
    assert [(href, text.strip()) for href, _current, text in bar.links] == expected
    current = [href for href, aria_current, _text in bar.links if aria_current == "page"]
    assert current == ([] if page == "device" else [pages[page]])


def test_every_linked_page_answers_200_to_a_viewer_and_404_to_an_outsider(client_for, viewer, outsider, plant_a):
    member, stranger = client_for(viewer), client_for(outsider)
    bar = PlantBar(assert_status(member.get(f"/plants/{plant_a.pk}/"), 200).content.decode())
    assert len(bar.links) == len(LABELS)
    for href, _current, _text in bar.links:
        assert_status(member.get(href), 200)
        assert_status(stranger.get(href), 404)


def test_switcher_opens_the_same_page_of_the_chosen_plant(client_for, plant_a, plant_b, press):
    both = make_user("both", plant=plant_a, role=Role.VIEWER)
    member_set_role(plant=plant_b, user=both, role=Role.VIEWER)
    client = client_for(both)
    for page, url in plant_pages(plant_a.pk).items():
        bar = PlantBar(assert_status(client.get(url), 200).content.decode())
        assert bar.options == [(plant_a.pk, url), (plant_b.pk, plant_pages(plant_b.pk)[page])]
    bar = PlantBar(assert_status(client.get(f"/devices/{press.pk}/"), 200).content.decode())
    assert bar.options == [(plant_a.pk, f"/plants/{plant_a.pk}/"), (plant_b.pk, f"/plants/{plant_b.pk}/")]


@pytest.mark.parametrize("path", ["/alarms/kpis/", "/analytics/oee/"])
@pytest.mark.parametrize("plant", ["abc", "0", "99999999999999999999999"])
def test_pages_taking_the_plant_as_query_answer_404_for_a_malformed_plant(client_for, viewer, plant_a, path, plant):
    assert_status(client_for(viewer).get(path, {"plant": plant}), 404)


@pytest.mark.parametrize("path", ["/alarms/kpis/", "/analytics/oee/"])
def test_pages_taking_the_plant_as_query_show_your_first_plant_without_one(client_for, viewer, outsider, plant_a, path):
    bar = PlantBar(assert_status(client_for(viewer).get(path), 200).content.decode())
    assert [href for href, aria_current, _text in bar.links if aria_current == "page"] == [
        plant_pages(plant_a.pk)["alarm_kpis" if path == "/alarms/kpis/" else "oee"]
    ]
    page = assert_status(client_for(outsider).get(path), 200).content.decode()
    assert "no role" in page and not PlantBar(page).links
