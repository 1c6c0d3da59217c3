"""The embedded default (`make run` without a broker): an alarm raised by a beat-scheduled timer reaches
a browser stream of the same process.

``manage.py serve`` (Procfile.dev's ``web``) runs Celery beat as a thread of the Daphne process when
Celery is eager. Here a real server runs that command on a database of its own; a real WebSocket
client follows plant A; then a "no data" rule is added. Nothing is posted: only the beat timer
``run_alarm_timers`` can raise the alarm, from beat's thread, and the browser must receive it.
"""

import pytest

from tests.servers import live_stream, next_event, run_python, seeded_stack


@pytest.fixture
def embedded(tmp_path):
    seed = "from tests.e2e_seed import seed; seed(devices=1, sensor=False)"
    # No MQTT bridge here: test_serve_embedded_mqtt.py tests that.
    stack = seeded_stack(tmp_path, seed, env={"MQTT_URL": None}, prepare=[("sync_schedules",)], embedded=True)
    with stack as (server, seeded):
        yield server, seeded


def test_alarm_raised_by_a_beat_timer_reaches_a_browser_of_the_web_process(embedded):
    server, seeded = embedded
    plant = seeded["plants"]["A"]
    with live_stream(server, "operator", seeded["password"], plant) as browser:
        # The press has never sent anything: the next timer run (every 5 s) finds it silent.
        run_python(
            server.env,
            "from alerts.tests.factories import make_rule; from devices.models import Plant; "
            f"make_rule(Plant.objects.get(pk={plant}), name='Press silent', metric='', condition='no_data', "
            "no_data_seconds=60, threshold=None, severity='info', action='Check the network.'); print('{}')",
        )
        alarm, frames = next_event(browser, "alarm", timeout=20)
    assert alarm is not None, f"no alarm event within 20 s; frames: {frames}; server log: {server.log_tail()}"
    assert alarm["rule"] == "Press silent"
    assert alarm["device_id"] == seeded["devices"]["press-001"]["id"]
    assert alarm["state"] == "active_unack"
