"""A device names its product and order over MQTT: the real bridge against the real broker."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from devices.tests import test_mqtt_bridge as bridge_tests
from devices.tests.factories import make_device, make_line
from devices.tests.test_mqtt_bridge import dead_letters, iso, on_broker, readings, unique, wait_for
from production.models import Run
from production.tests.factories import make_order, make_product

# The bridge tests' fixtures: a bridge in a thread on the broker of MQTT_URL, a real publisher.
bridges, publish, mqtt_url, own_broker = (
    bridge_tests.bridges, bridge_tests.publish, bridge_tests.mqtt_url, bridge_tests.own_broker
)  # fmt: skip


@on_broker
def test_starts_and_switches_runs_when_a_device_publishes_product_and_order(bridges, publish, plant_a):
    line = make_line(plant_a, unique("line"))
    machine = make_device(line, unique("moulder"), ideal_cycle_time=Decimal("10"))
    a = make_product(plant_a, unique("A"), lines=[(line, 12)])
    order = make_order(plant_a, a, unique("PO"))
    bridges()
    t = timezone.now().replace(microsecond=0) - timedelta(minutes=5)
    publish(machine.uid, {"ts": iso(t), "values": {"count_total": 0}, "state": "running", "order": order.number})
    wait_for(lambda: Run.objects.filter(device=machine).exists(), "the run of the order")
    run = Run.objects.get(device=machine)
    assert (run.order, run.product, run.start, run.ideal_cycle_time) == (order, a, t, Decimal("12"))

    publish(
        machine.uid,
        {"messages": [{"ts": iso(t + timedelta(minutes=2)), "values": {"count_total": 9}, "product": "NEW-1"}]},
    )
    wait_for(lambda: Run.objects.filter(device=machine).count() == 2, "the second run")
    first, second = Run.objects.filter(device=machine).order_by("start")
    assert first.end == second.start == t + timedelta(minutes=2)
    assert (second.product.code, second.order, second.end) == ("NEW-1", None, None)
    assert readings(machine) == [("count_total", 0.0), ("count_total", 9.0)]


@on_broker
def test_keeps_a_malformed_product_as_a_dead_letter_with_the_reason(bridges, publish, plant_a):
    machine = make_device(make_line(plant_a, unique("line")), unique("moulder"))
    bridges()
    publish(machine.uid, {"values": {"v": 1.0}, "product": 7})
    letter = wait_for(lambda: dead_letters(machine.uid), "the dead letter")[0]
    assert "product" in letter.reason and not Run.objects.filter(device=machine).exists()
