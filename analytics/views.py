"""The OEE page of a plant or line: drawn in the browser from the OEE, stops and reason-code APIs."""

from datetime import UTC, datetime, time, timedelta

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone

from accounts.roles import PERM_OPERATE
from accounts.selectors import plant_list_for, scope_to_plants, user_has_plant_perm
from analytics.calendar import occurrences
from analytics.models import NonProductionDay, Shift
from devices.models import Device, Line


def _current_shift(plant, now):
    """The shift occurrence running at ``now`` (name, start UTC), or None."""
    shifts = Shift.objects.filter(plant=plant).prefetch_related("breaks")
    closed = set(NonProductionDay.objects.filter(plant=plant).values_list("date", flat=True))
    running = occurrences(shifts, now, now + timedelta(seconds=1), plant.tz, closed)
    return running[0] if running else None


@login_required
def oee_page(request):
    """Today and the current shift per machine, the trend, the losses Pareto and the stops to classify."""
    plants = list(plant_list_for(request.user).order_by("name"))
    if not plants:
        return render(request, "analytics/oee.html", {"plants": []})
    try:
        plant_id = int(request.GET.get("plant") or plants[0].pk)
    except ValueError:
        raise Http404("No such plant.") from None
    plant = next((p for p in plants if p.pk == plant_id), None)
    if plant is None:
        raise Http404("No such plant among yours.")
    lines = list(scope_to_plants(Line.objects.filter(plant=plant), request.user))
    line = None
    if request.GET.get("line"):
        line = next((ln for ln in lines if str(ln.pk) == request.GET["line"]), None)
        if line is None:
            raise Http404("No such line in this plant.")
    machines = Device.objects.filter(plant=plant, kind=Device.Kind.MACHINE).order_by("uid")
    if line is not None:
        machines = machines.filter(line=line)
    now = timezone.now()
    shift = _current_shift(plant, now)
    today = datetime.combine(now.astimezone(plant.tz).date(), time(), tzinfo=plant.tz).astimezone(UTC)
    context = {
        "plants": plants,
        "plant": plant,
        "lines": lines,
        "line": line,
        "machines": list(machines.values("pk", "uid", "name")),
        "shift": shift,
        "today_start": today.isoformat(),
        "can_classify": user_has_plant_perm(request.user, PERM_OPERATE, plant),
    }
    return render(request, "analytics/oee.html", context)
