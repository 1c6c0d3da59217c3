from django.contrib import admin

from devices.formats import format_value
from devices.models import Metric
from devices.services.metrics import EDITABLE, metric_update

EXAMPLE_VALUE = 1234.5678


@admin.register(Metric)
class MetricAdmin(admin.ModelAdmin):
    """How each metric reads on every page and e-mail: display name, unit, precision.

    Metrics are shared by all plants (devices create them by sending them), so editing one is for
    staff with the "change metric" permission; the name is the devices' key and stays read-only.
    """

    list_display = ["name", "display_name", "unit", "precision", "example"]
    list_editable = ["display_name", "unit", "precision"]
    search_fields = ["name", "display_name"]
    fields = ["name", "display_name", "unit", "precision", "example"]
    readonly_fields = ["name", "example"]

    @admin.display(description="reads as")
    def example(self, metric):
        return format_value(EXAMPLE_VALUE, metric)

    def has_add_permission(self, request):
        return False  # devices create metrics by sending them

    def has_delete_permission(self, request, obj=None):
        return False  # readings reference it

    def save_model(self, request, obj, form, change):
        metric_update(metric=obj, **{name: form.cleaned_data[name] for name in EDITABLE if name in form.cleaned_data})
