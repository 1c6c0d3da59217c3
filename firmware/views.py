"""The firmware pages (session login): the plant's rollouts board, kept live from ``/ws/live/``."""

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render

from accounts.roles import PERM_MANAGE
from accounts.selectors import plant_list_for, user_has_plant_perm
from factory.pages import plant_nav
from firmware.events import rollout_snapshots


@login_required
def rollout_board(request, plant_id: int):
    """The plant's firmware rollouts with per-stage progress, failing devices and audit trail, then
    live (``rollout`` events). ``Accept: application/json`` answers the snapshots (the page's
    catch-up after a reconnect); 404 outside your plants."""
    plant = get_object_or_404(plant_list_for(request.user), pk=plant_id)
    snapshots = rollout_snapshots(plant)
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"rollouts": snapshots})
    context = {
        **plant_nav(request, plant, "rollouts"),
        "rollouts": snapshots,
        "config": {"plant": plant.pk},
        "can_manage": user_has_plant_perm(request.user, PERM_MANAGE, plant),  # may upload images in the admin
    }
    return render(request, "firmware/rollouts.html", context)
