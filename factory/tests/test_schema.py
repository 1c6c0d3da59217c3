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


def test_docs_page_loads_its_assets_locally_when_offline(client_for, viewer):
    page = assert_status(client_for(viewer).get("/api/docs/"), 200).content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "cdn" not in page.lower()
