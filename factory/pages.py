"""What every plant page shares: the plant it shows (404 outside your plants), the plant bar of
``templates/plant_base.html`` (plant switcher, navigation to each page of the plant, whether you may
operate there) and tolerant parsing of integer query parameters.

It lives in ``factory`` because the layout it feeds is the project's, not one app's: the pages of
devices, alerts, firmware and analytics all extend it, and it reads accounts (plants, roles) and
the live stream's coalescing window; in any one app it would make the others import from it.
"""

from django.db.models import Q
from django.http import Http404, HttpRequest
from django.urls import reverse

from accounts.roles import PERM_MANAGE, PERM_OPERATE
from accounts.selectors import plant_list_for, user_has_plant_perm
from alerts.models import AlertRule
from devices.formats import metric_formats
from devices.models import Metric, Plant
from devices.selectors import plant_metrics, provisioning_pending_count
from live.frames import COALESCE_SECONDS

# The plant navigation in order: (page, label, URL name, where the URL names the plant). Pages
# under /plants/<id>/ take the plant in the path, the alarm KPI and OEE pages as ?plant=<id>.
PLANT_PAGES = (
    ("overview", "Overview", "plant_overview", "path"),
    ("alarms", "Alarms", "alarm_console", "path"),
    ("alarm_kpis", "Alarm KPIs", "alarm_kpis", "query"),
    ("oee", "OEE", "oee", "query"),
    ("rollouts", "Rollouts", "rollout_board", "path"),
)
# Pages only a plant's admins see (and link to), after the others: the devices waiting for
# approval, with their number as a badge.
ADMIN_PAGES = (("approvals", "Approvals", "provisioning_approvals", "path"),)
_PAGE_URLS = {page: (url_name, plant_in) for page, _label, url_name, plant_in in PLANT_PAGES + ADMIN_PAGES}
_MAX_ID = 2**63  # larger ids would overflow the database's integer type (a 500 instead of a 404)


def int_param(request: HttpRequest, name: str) -> int | None:
    """The positive integer in ``?name=``, or None when it is missing or malformed (a filter left off)."""
    try:
        value = int(request.GET.get(name, ""))
    except ValueError:
        return None
    return value if 0 < value < _MAX_ID else None


def plant_page_url(page: str, plant_id: int) -> str:
    """The URL of ``page`` (a key of ``PLANT_PAGES``) for a plant; pages outside the navigation
    (a device's page) lead to the plant's overview."""
    url_name, plant_in = _PAGE_URLS.get(page, _PAGE_URLS["overview"])
    if plant_in == "query":
        return f"{reverse(url_name)}?plant={plant_id}"
    return reverse(url_name, args=[plant_id])


def plant_from_query(request: HttpRequest) -> Plant | None:
    """The plant of a page that takes ``?plant=<id>``: that one among the user's plants, or their
    first by name when none is named; None when they hold no plant. A malformed id or a plant that
    is not theirs is 404 (the same answer, so ids of other plants are not revealed)."""
    visible = plant_list_for(request.user).order_by("name")
    if not request.GET.get("plant"):
        return visible.first()
    plant_id = int_param(request, "plant")
    plant = visible.filter(pk=plant_id).first() if plant_id else None
    if plant is None:
        raise Http404("No such plant among yours.")
    return plant


def plant_formats(plant: Plant) -> dict:
    """How the plant's pages show values and times: ``{"tz": "<IANA zone>", "metrics": {name:
    {"label", "unit", "precision"}}}`` for every metric its devices report or its rules watch.
    ``plant_base.html`` emits it as the ``plant-formats`` JSON that ``static/js/live.js`` reads
    (``pageConfig()``, ``formatValue``, ``metricLabel``, ``formatTime``). Two queries."""
    watched = set(AlertRule.objects.filter(plant=plant).exclude(metric="").values_list("metric", flat=True))
    metrics = list(Metric.objects.filter(Q(pk__in=plant_metrics(plant.pk).values("pk")) | Q(name__in=watched)))
    return {"tz": plant.time_zone, "metrics": metric_formats({m.name for m in metrics} | watched, metrics)}


def plant_nav(request: HttpRequest, plant: Plant | None, page: str) -> dict:
    """Template context of the plant bar: the plant, the switcher's plants (each pointing at the
    same page of that plant), the navigation with the current page marked, ``can_operate`` and
    ``formats`` (``plant_formats``: the plant's zone and how its metrics read). The plant's admins
    also get the admin pages, each with a ``badge`` (the number of devices waiting for approval).
    ``plant`` None (a user without plants) leaves the bar out."""
    if plant is None:
        return {"plant": None, "plants": [], "nav": [], "page": page, "can_operate": False, "formats": None}
    plants = list(plant_list_for(request.user).only("pk", "name"))
    managed = None
    if page in {key for key, *_rest in ADMIN_PAGES}:  # other plants' admin pages would be 403: their overview
        managed = set(plant_list_for(request.user, PERM_MANAGE).values_list("pk", flat=True))
    nav = [
        {"page": key, "label": label, "url": plant_page_url(key, plant.pk), "current": key == page}
        for key, label, _url_name, _plant_in in PLANT_PAGES
    ]
    if user_has_plant_perm(request.user, PERM_MANAGE, plant):
        badge = provisioning_pending_count(plant.pk)
        nav += [
            {"page": key, "label": label, "url": plant_page_url(key, plant.pk), "current": key == page, "badge": badge}
            for key, label, _url_name, _plant_in in ADMIN_PAGES
        ]
    switch_to = {p.pk: page if managed is None or p.pk in managed else "overview" for p in plants}
    return {
        "plant": plant,
        "plants": [{"pk": p.pk, "name": p.name, "url": plant_page_url(switch_to[p.pk], p.pk)} for p in plants],
        "nav": nav,
        "page": page,
        "can_operate": user_has_plant_perm(request.user, PERM_OPERATE, plant),
        "coalesce_ms": int(COALESCE_SECONDS * 1000),
        "formats": plant_formats(plant),
    }
