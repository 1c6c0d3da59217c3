from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
import yaml

from conftest import assert_status

pytestmark = pytest.mark.django_db


def test_schema_documents_management_and_device_endpoints_when_fetched(client_for, viewer):
    response = assert_status(client_for(viewer).get("/api/schema/"), 200)
    paths = yaml.safe_load(response.content)["paths"]
    for path in ("/api/v1/plants/", "/api/v1/devices/", "/api/v1/devices/{id}/tokens/", "/api/v1/telemetry/"):
        assert path in paths, path
    assert set(paths["/api/v1/telemetry/"]["post"]["responses"]) >= {"202", "400", "401", "403", "413", "415", "429"}
    assert set(paths["/api/v1/device/commands/{command_id}/result/"]["post"]["responses"]) >= {"200", "404", "409"}
    assert "/api/v1/devices/{id}/commands/" in paths and "/api/v1/device/commands/" in paths


class _AssetLinks(HTMLParser):
    """The URLs a browser fetches to build the page: ``<script src>``, ``<link href>``, ``<img src>``."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attribute = {"script": "src", "link": "href", "img": "src"}.get(tag)
        value = dict(attrs).get(attribute)
        if value:
            self.urls.append(value)


def test_docs_page_loads_its_assets_locally_when_offline(client_for, viewer, settings):
    # Serve static files from the finders, as `runserver`/`serve` do in the embedded default.
    settings.WHITENOISE_USE_FINDERS = settings.WHITENOISE_AUTOREFRESH = True
    browser = client_for(viewer)
    page = assert_status(browser.get("/api/swagger/"), 200).content.decode()
    parser = _AssetLinks()
    parser.feed(page)
    assert any(url.endswith("/swagger-ui-bundle.js") for url in parser.urls), parser.urls
    for url in parser.urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{url} is not same-origin"
        # Static files, and Swagger UI's initialiser from the page's own view (a script, not inline: CSP).
        assert parts.path.startswith("/static/") or url == "/api/swagger/?script=", f"{url} is not a local file"
        assert_status(browser.get(url), 200)
