# The ingest's cache of metric ids, cleared around every test (the tests here store readings).
from devices.tests.conftest import _fresh_metric_cache  # noqa: F401
