import django_filters

from factory.filters import FilterSet, IdFilter
from firmware.models import FirmwareImage, Rollout, RolloutTarget


class FirmwareImageFilterSet(FilterSet):
    plant = IdFilter(field_name="plant", label="Plant id")
    version = django_filters.CharFilter()
    model = django_filters.CharFilter(method="filter_model", label="Compatible with this hardware model")

    class Meta:
        model = FirmwareImage
        fields = ["plant", "version", "model"]

    def filter_model(self, queryset, name, value):
        # JSON list membership differs per database; the lists are short, so filter in Python on ids.
        ids = [pk for pk, models in queryset.values_list("pk", "hardware_models") if value.lower() in
               {m.lower() for m in models}]  # fmt: skip
        return queryset.filter(pk__in=ids)


class RolloutFilterSet(FilterSet):
    plant = IdFilter(field_name="plant", label="Plant id")
    image = IdFilter(field_name="image", label="Image id")

    class Meta:
        model = Rollout
        fields = ["plant", "image", "state"]


class RolloutTargetFilterSet(FilterSet):
    class Meta:
        model = RolloutTarget
        fields = ["status", "stage"]
