"""The OEE page of a plant or line: drawn in the browser from the OEE, stops and reason-code APIs."""

from datetime import UTC, datetime, time

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.utils import timezone

from accounts.selectors import scope_to_plants
from analytics.selectors import shift_current
from devices.formats import format_time
from devices.models import Device, Line
from factory.pages import plant_from_query, plant_nav


@login_required
def oee_page(request):
    """Today and the current shift per machine, the trend, the losses Pareto and the stops to classify,
    of one of your plants (``?plant=``, else your first) or one of its lines (``?line=``)."""
    plant = plant_from_query(request)
    if plant is None:
        return render(request, "analytics/oee.html", plant_nav(request, None, "oee"))
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
    shift = shift_current(plant, now)
    today = datetime.combine(now.astimezone(plant.tz).date(), time(), tzinfo=plant.tz).astimezone(UTC)
    context = {
        **plant_nav(request, plant, "oee"),
        "lines": lines,
        "line": line,
        "machines": list(machines.values("pk", "uid", "name")),
        "shift": shift,
        "shift_since": format_time(shift.start, plant.tz, date=False) if shift else "",  # the plant bar names the zone
        "today_start": today.isoformat(),
    }
    return render(request, "analytics/oee.html", context)
