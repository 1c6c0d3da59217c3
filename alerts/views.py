"""The alerts' pages (session login): the plant's alarm console, kept live from ``/ws/live/``, and the
alarm KPI page, drawn in the browser from ``GET /api/v1/alarms/kpis/``."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render

from accounts.selectors import plant_list_for
from devices.models import Device
from factory.pages import plant_from_query, plant_nav


@login_required
def alarm_console(request, plant_id: int):
    """The plant's alarms: loaded from ``/api/v1/alarms/`` when that API exists, then live."""
    plant = get_object_or_404(plant_list_for(request.user), pk=plant_id)
    devices = dict(Device.objects.filter(plant=plant).values_list("pk", "uid"))
    context = {
        **plant_nav(request, plant, "alarms"),
        "config": {"plant": plant.pk, "devices": devices},
    }
    return render(request, "alerts/console.html", context)


@login_required
def kpi_page(request):
    """ISA-18.2 / EEMUA 191 alarm KPIs of one of your plants (``?plant=``, else your first) over a
    chosen period; another plant is 404."""
    plant = plant_from_query(request)
    return render(request, "alerts/kpis.html", plant_nav(request, plant, "alarm_kpis"))
