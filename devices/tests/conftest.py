import pytest

from devices.services import ingest


@pytest.fixture(autouse=True)
def _fresh_metric_cache():
    """Metric ids are cached per process; test transactions roll the rows back, so start clean."""
    ingest._metric_ids.clear()
    yield
    ingest._metric_ids.clear()
