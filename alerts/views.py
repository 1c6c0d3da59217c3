"""The alerts' pages (session login): the plant's alarm console, kept live from ``/ws/live/``, and the
alarm KPI page, drawn in the browser from ``GET /api/v1/alarms/kpis/``."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render

from accounts.roles import PERM_MANAGE
from accounts.selectors import plant_list_for, user_has_plant_perm
from alerts.models import Alarm, Severity
from devices.models import Device, Line
from factory.pages import plant_from_query, plant_nav

# The states in plain words with their ISA-18.2 meaning (what the operator still has to do).
ALARM_STATE_WORDS = {
    Alarm.State.ACTIVE_UNACK: ("Active, not acknowledged", "The condition is present and nobody has taken it on yet."),
    Alarm.State.ACTIVE_ACK: ("Active, acknowledged", "The condition is present and someone is dealing with it."),
    Alarm.State.CLEARED_UNACK: ("Cleared, not acknowledged", "Back to normal; still needs an acknowledgement."),
    Alarm.State.CLOSED: ("Closed", "Back to normal and acknowledged (or resolved)."),
}


@login_required
def alarm_console(request, plant_id: int):
    """The plant's open alarms from ``/api/v1/alarms/``, then live; the script gets the names it
    shows (devices, lines, severities, states), the longest shelve and whether the user may
    suppress (plant admin)."""
    plant = get_object_or_404(plant_list_for(request.user), pk=plant_id)
    devices = dict(Device.objects.filter(plant=plant).values_list("pk", "uid"))
    lines = dict(Line.objects.filter(plant=plant).order_by("name").values_list("pk", "name"))
    context = {
        **plant_nav(request, plant, "alarms"),
        "can_manage": user_has_plant_perm(request.user, PERM_MANAGE, plant),
        "shelve_max_minutes": settings.ALARM_SHELVE_MAX_MINUTES,
        "lines": lines,
        "severities": Severity.choices,
        "states": [(state, ALARM_STATE_WORDS[state][0]) for state in Alarm.OPEN_STATES],
    }
    context["config"] = {
        "plant": plant.pk,
        "devices": devices,
        "lines": lines,
        "canOperate": context["can_operate"],
        "canManage": context["can_manage"],
        "shelveMaxMinutes": settings.ALARM_SHELVE_MAX_MINUTES,
        "states": {str(state): words for state, words in ALARM_STATE_WORDS.items()},
    }
    return render(request, "alerts/console.html", context)


@login_required
def kpi_page(request):
    """ISA-18.2 / EEMUA 191 alarm KPIs of one of your plants (``?plant=``, else your first) over a
    chosen period; another plant is 404."""
    plant = plant_from_query(request)
    return render(request, "alerts/kpis.html", plant_nav(request, plant, "alarm_kpis"))
