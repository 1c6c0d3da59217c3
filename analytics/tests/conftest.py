import pytest

from devices.services import ingest


@pytest.fixture(autouse=True)
def _fresh_metric_cache(settings):
    """Metric ids are cached per process; test transactions roll the rows back, so start clean."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.OEE_MINOR_STOP_SECONDS = 120
    ingest._metric_ids.clear()
    yield
    ingest._metric_ids.clear()
