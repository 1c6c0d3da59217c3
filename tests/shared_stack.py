"""Tests that share one server stack (a module-scoped ``stack`` fixture: ``(server, seeded)`` from
``tests.servers.seeded_stack``) never share the devices they write to.

A reading, state or alarm one test sends must not land in another test's chart, tile or count.
Each such test takes the seeded devices it writes to with ``own_device(uid)``; handing a device
to a second test of the module fails that test, so the sharing shows up at once, whatever the
order the tests run in. Loaded as a pytest plugin by the root ``conftest.py``.
"""

import pytest


class DevicePool:
    """The seeded devices of one server stack (``seeded["devices"]``), each handed to one test only."""

    def __init__(self, devices: dict):
        self.devices = devices
        self.owners = {}

    def claim(self, test: str, uid: str) -> dict:
        """The device ``uid`` (its ``id``, ``token``, … plus ``uid``) for ``test`` to write to."""
        assert uid in self.devices, f"{uid} is not seeded on this stack: {sorted(self.devices)}"
        owner = self.owners.setdefault(uid, test)
        assert owner == test, (
            f"{uid} is already written to by {owner}: tests sharing a server stack need devices of their own "
            "(seed more, or pick one no other test of the module uses)"
        )
        return {"uid": uid, **self.devices[uid]}


@pytest.fixture(scope="module")
def device_pool(stack):
    return DevicePool(stack[1]["devices"])


@pytest.fixture
def own_device(device_pool, request):
    """``own_device(uid)`` → that seeded device, written to by this test only (see the module docstring)."""
    return lambda uid: device_pool.claim(request.node.name, uid)
