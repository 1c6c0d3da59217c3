import pytest


@pytest.fixture(autouse=True)
def _eager_celery_and_oee_settings(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.OEE_MINOR_STOP_SECONDS = 120
