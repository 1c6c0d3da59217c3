"""Rollout lifecycle on services and eager tasks: stages, thresholds, pause/resume, cancel, retry, rollback."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.roles import Role
from devices.tests.factories import make_device, make_group, make_user
from firmware.models import Rollout, RolloutTarget
from firmware.services import rollouts
from firmware.services.stages import stage_sizes
from firmware.services.updates import update_report, updates_time_out
from firmware.tests.factories import make_fleet, make_image, make_rollout

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "spec, total, sizes",
    [
        ([1, "5%", "25%", "100%"], 100, [1, 4, 20, 75]),
        ([1, "25%", "100%"], 3, [1, 0, 2]),
        ([2, 2], 10, [2, 8]),
        (["100%"], 7, [7]),
        ([5, "100%"], 3, [3, 0]),
    ],
)
def test_stage_sizes(spec, total, sizes):
    assert stage_sizes(spec, total) == sizes


@pytest.mark.parametrize("spec", [[], ["50%", "25%"], [0], ["150%"], ["x"], [True]])
def test_malformed_stages_are_refused(spec):
    with pytest.raises(ValidationError):
        stage_sizes(spec, 10)


def statuses(rollout) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for stage, status in rollout.targets.order_by("stage", "device__uid").values_list("stage", "status"):
        out.setdefault(stage, []).append(status)
    return out


def finish(on_commit, rollout, stage: int, results: list[str | None]):
    """Devices of ``stage`` report their outcome, in uid order (None: this one says nothing)."""
    targets = rollout.targets.filter(stage=stage).select_related("device").order_by("device__uid")
    for target, result in zip(targets, results, strict=False):
        if result is not None:
            on_commit(update_report, device=target.device, update_id=target.pk, status=result)
    rollout.refresh_from_db()


def test_no_compatible_target_is_refused_and_nothing_written(plant_a):
    make_fleet(plant_a, 3, model="HP-900")
    image = make_image(plant_a, "2.0.0", models=["HP-400"])
    with pytest.raises(ValidationError, match="No compatible device.*3 incompatible"):
        make_rollout(plant_a, image)
    assert not Rollout.objects.exists()


def test_incompatible_disabled_and_up_to_date_devices_are_never_targeted(plant_a):
    fleet = make_fleet(plant_a, 2)
    line = fleet[0][0].line
    make_device(line, "odd-1", model="HP-900")
    make_device(line, "off-1", enabled=False)
    make_device(line, "new-1", firmware_version="2.0.0")
    rollout = make_rollout(plant_a, make_image(plant_a, "2.0.0"), line=line)
    assert sorted(rollout.targets.values_list("device__uid", flat=True)) == sorted(d.uid for d, _ in fleet)
    assert "1 incompatible skipped, 1 disabled skipped, 1 up to date skipped" in rollout.events.get().detail


def test_group_selection_targets_only_its_members(plant_a):
    fleet = make_fleet(plant_a, 3)
    group = make_group(plant_a, "Pilot", devices=[fleet[1][0]])
    rollout = make_rollout(plant_a, make_image(plant_a, "2.0.0"), group=group)
    assert list(rollout.targets.values_list("device", flat=True)) == [fleet[1][0].pk]


def test_stage_success_opens_the_next_stage_and_completes(plant_a, on_commit):
    make_fleet(plant_a, 4)
    rollout = make_rollout(plant_a, make_image(plant_a, "2.0.0"), stages=[1, "100%"])
    on_commit(rollouts.rollout_start, rollout=rollout)
    rollout.refresh_from_db()
    assert (rollout.state, rollout.current_stage) == ("running", 1)
    assert statuses(rollout) == {1: ["notified"], 2: ["queued"] * 3}
    finish(on_commit, rollout, 1, ["succeeded"])
    assert rollout.current_stage == 2
    assert statuses(rollout)[2] == ["notified"] * 3
    finish(on_commit, rollout, 2, ["succeeded"] * 3)
    assert rollout.state == "completed"
    actions = list(rollout.events.values_list("action", flat=True))
    assert actions == ["created", "started", "stage_started", "completed"]


def test_advancing_twice_changes_nothing(plant_a, on_commit):
    make_fleet(plant_a, 2)
    rollout = make_rollout(plant_a, make_image(plant_a, "2.0.0"), stages=[1, "100%"])
    on_commit(rollouts.rollout_start, rollout=rollout)
    events = rollout.events.count()
    assert on_commit(rollouts.rollout_advance, rollout_id=rollout.pk) == "waiting"
    assert on_commit(rollouts.rollout_advance, rollout_id=rollout.pk) == "waiting"
    assert rollout.events.count() == events
    assert RolloutTarget.objects.get(stage=1).events.count() == 1


def test_failures_over_the_error_threshold_pause_and_mail_the_plant_admins(plant_a, on_commit):
    make_user("boss", plant=plant_a, role=Role.ADMIN)
    make_user("op", plant=plant_a, role=Role.OPERATOR)
    make_fleet(plant_a, 6)
    rollout = make_rollout(plant_a, make_image(plant_a, "2.0.0"), stages=[2, "100%"], error_threshold=40)
    on_commit(rollouts.rollout_start, rollout=rollout)
    finish(on_commit, rollout, 1, ["failed"])  # 1 of 2 = 50% > 40%
    assert rollout.state == "paused"
    assert "1 of 2 devices failed" in rollout.pause_reason
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["boss@example.com"]
    assert "Rollout paused" in mail.outbox[0].subject
    finish(on_commit, rollout, 1, [None, "succeeded"])  # the second device still finishes
    assert statuses(rollout)[2] == ["queued"] * 4  # nobody new is notified while paused

    on_commit(rollouts.rollout_resume, rollout=rollout)
    rollout.refresh_from_db()
    assert (rollout.state, rollout.current_stage) == ("running", 2)
    assert statuses(rollout)[2] == ["notified"] * 4
    finish(on_commit, rollout, 2, ["succeeded"] * 4)
    assert rollout.state == "completed"
    assert len(mail.outbox) == 1


def test_manual_approval_waits_between_stages(plant_a, on_commit):
    make_fleet(plant_a, 3)
    rollout = make_rollout(plant_a, make_image(plant_a, "2.0.0"), stages=[1, "100%"], auto_advance=False)
    on_commit(rollouts.rollout_start, rollout=rollout)
    finish(on_commit, rollout, 1, ["succeeded"])
    assert rollout.awaiting_approval and rollout.current_stage == 1
    on_commit(rollouts.rollout_approve, rollout=rollout)
    assert statuses(rollout)[2] == ["notified"] * 2
    with pytest.raises(ValidationError, match="not waiting"):
        rollouts.rollout_approve(rollout=rollout)


def test_silent_device_times_out_and_counts_as_failure(plant_a, on_commit, clock, settings):
    settings.FIRMWARE_UPDATE_TIMEOUT = 600
    make_fleet(plant_a, 2)
    rollout = make_rollout(plant_a, make_image(plant_a, "2.0.0"), error_threshold=0)
    on_commit(rollouts.rollout_start, rollout=rollout)
    clock.shift(timedelta(seconds=599))
    assert on_commit(updates_time_out) == 0
    first = rollout.targets.order_by("device__uid").first()
    on_commit(update_report, device=first.device, update_id=first.pk, status="downloading")
    clock.shift(timedelta(seconds=2))
    assert on_commit(updates_time_out) == 1  # the other one; the first reported progress
    assert on_commit(updates_time_out) == 0
    rollout.refresh_from_db()
    assert statuses(rollout) == {1: ["downloading", "timed_out"]}
    assert rollout.state == "paused"


def test_cancel_cancels_pending_updates(plant_a, on_commit):
    fleet = make_fleet(plant_a, 3)
    rollout = make_rollout(plant_a, make_image(plant_a, "2.0.0"), stages=[1, "100%"])
    on_commit(rollouts.rollout_start, rollout=rollout)
    on_commit(rollouts.rollout_cancel, rollout=rollout)
    assert rollout.state == "cancelled"
    assert statuses(rollout) == {1: ["cancelled"], 2: ["cancelled", "cancelled"]}
    target = rollout.targets.get(stage=1)
    with pytest.raises(Exception, match="cancelled"):
        update_report(device=fleet[0][0], update_id=target.pk, status="succeeded")
    with pytest.raises(ValidationError):
        rollouts.rollout_resume(rollout=rollout)


def test_retry_requeues_failed_devices(plant_a, on_commit):
    make_fleet(plant_a, 2)
    rollout = make_rollout(plant_a, make_image(plant_a, "2.0.0"), error_threshold=100, success_threshold=50)
    on_commit(rollouts.rollout_start, rollout=rollout)
    finish(on_commit, rollout, 1, ["failed", "succeeded"])
    assert rollout.state == "completed"
    assert on_commit(rollouts.rollout_retry, rollout=rollout) == 1
    rollout.refresh_from_db()
    assert rollout.state == "running"
    assert sorted(statuses(rollout)[1]) == ["notified", "succeeded"]
    assert rollout.targets.get(status="notified").attempts == 1


def test_rollback_returns_devices_to_their_previous_image(plant_a, on_commit):
    fleet = make_fleet(plant_a, 2, version="1.0.0")
    make_image(plant_a, "1.0.0")
    rollout = make_rollout(plant_a, make_image(plant_a, "2.0.0"))
    on_commit(rollouts.rollout_start, rollout=rollout)
    finish(on_commit, rollout, 1, ["succeeded", "succeeded"])
    reverse = on_commit(rollouts.rollout_rollback, rollout=rollout)
    assert (reverse.state, reverse.rollback_of_id, reverse.image_id) == ("running", rollout.pk, None)
    assert set(reverse.targets.values_list("image__version", flat=True)) == {"1.0.0"}
    finish(on_commit, reverse, 1, ["succeeded", "succeeded"])
    assert reverse.state == "completed"
    for device, _ in fleet:
        device.refresh_from_db()
        assert device.firmware_version == "1.0.0"


def test_rollback_without_previous_image_is_refused(plant_a, on_commit):
    make_fleet(plant_a, 1)
    rollout = make_rollout(plant_a, make_image(plant_a, "2.0.0"))
    on_commit(rollouts.rollout_start, rollout=rollout)
    finish(on_commit, rollout, 1, ["succeeded"])
    with pytest.raises(ValidationError, match="no previous image"):
        rollouts.rollout_rollback(rollout=rollout)
    assert Rollout.objects.count() == 1


def test_scheduled_rollout_starts_when_due(plant_a, on_commit):
    make_fleet(plant_a, 1)
    later = timezone.now() + timedelta(hours=1)
    rollout = make_rollout(plant_a, make_image(plant_a, "2.0.0"), scheduled_at=later)
    on_commit(rollouts.rollout_start, rollout=rollout)
    assert rollout.state == "scheduled"
    assert on_commit(rollouts.rollouts_start_due, now=later - timedelta(seconds=1)) == 0
    assert on_commit(rollouts.rollouts_start_due, now=later) == 1
    rollout.refresh_from_db()
    assert rollout.state == "running" and statuses(rollout) == {1: ["notified"]}


def test_device_in_an_active_rollout_is_not_targeted_twice(plant_a, on_commit):
    make_fleet(plant_a, 2)
    image = make_image(plant_a, "2.0.0")
    on_commit(rollouts.rollout_start, rollout=make_rollout(plant_a, image))
    with pytest.raises(ValidationError, match="2 busy"):
        make_rollout(plant_a, make_image(plant_a, "2.1.0"))


def test_empty_stage_is_passed_through(plant_a, on_commit):
    make_fleet(plant_a, 2)
    rollout = make_rollout(plant_a, make_image(plant_a, "2.0.0"), stages=[2, "100%"])
    on_commit(rollouts.rollout_start, rollout=rollout)
    finish(on_commit, rollout, 1, ["succeeded", "succeeded"])
    assert (rollout.state, rollout.current_stage) == ("completed", 2)


def test_a_push_is_done_once_and_one_a_dead_worker_left_unsent_is_pushed_again_by_the_beat(
    plant_a, settings, on_commit
):
    from firmware.services.notify import targets_notify
    from firmware.tasks import run_rollout_timers

    fleet = make_fleet(plant_a, 3)
    rollout = make_rollout(plant_a, make_image(plant_a, "2.0.0"))
    on_commit(rollouts.rollout_start, rollout=rollout)  # eager: notified and pushed
    targets = RolloutTarget.objects.filter(rollout=rollout)
    assert [t.status for t in targets] == ["notified"] * len(fleet)
    assert all(t.pushed_at is not None for t in targets)
    ids = list(targets.values_list("pk", flat=True))
    assert targets_notify(ids) == 0  # a task handed out again (redelivery) pushes nothing twice

    # What a worker killed mid-push leaves: notified, never marked pushed.
    settings.FIRMWARE_PUSH_STUCK_SECONDS = 60
    now = timezone.now()
    targets.filter(pk=ids[0]).update(pushed_at=None, progress_at=now - timedelta(seconds=30))  # may still be pushing
    targets.filter(pk=ids[1]).update(pushed_at=None, progress_at=now - timedelta(seconds=61))
    assert on_commit(run_rollout_timers)["pushed_again"] == 1
    assert targets.get(pk=ids[1]).pushed_at is not None
    assert targets.get(pk=ids[0]).pushed_at is None
    assert on_commit(run_rollout_timers)["pushed_again"] == 0
