"""The rollout-paused e-mail: who gets it and what it says."""

import pytest
from django.core import mail

from accounts.roles import Role
from devices.tests.factories import make_user
from firmware.services.mail import rollout_paused_mail
from firmware.tests.factories import make_fleet, make_image, make_rollout

pytestmark = pytest.mark.django_db


def test_mails_the_plant_admins_the_reason_and_the_link_when_a_rollout_paused(plant_a, plant_b, settings):
    settings.SITE_URL = "https://factory.example.com/"
    make_user("boss", plant=plant_a, role=Role.ADMIN)
    make_user("op", plant=plant_a, role=Role.OPERATOR)
    make_user("other-boss", plant=plant_b, role=Role.ADMIN)
    make_fleet(plant_a, 2)
    rollout = make_rollout(plant_a, make_image(plant_a, "2.0.0"))
    rollout.pause_reason = "stage 1: 1 of 2 devices failed (error threshold 40%)"

    assert rollout_paused_mail(rollout=rollout) == 1

    [message] = mail.outbox
    assert message.to == ["boss@example.com"]
    assert message.subject == f"[{plant_a.name}] Rollout paused: {rollout.name}"
    assert "stage 1: 1 of 2 devices failed" in message.body
    assert f"https://factory.example.com/admin/firmware/rollout/{rollout.pk}/change/" in message.body


def test_sends_nothing_when_the_plant_has_no_admin_with_an_address(plant_a):
    make_user("op", plant=plant_a, role=Role.OPERATOR)
    make_fleet(plant_a, 1)
    rollout = make_rollout(plant_a, make_image(plant_a, "2.0.0"))

    assert rollout_paused_mail(rollout=rollout) == 0
    assert mail.outbox == []
