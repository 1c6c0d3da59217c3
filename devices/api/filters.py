import django_filters

from devices.models import Device, DeviceGroup, DeviceToken, Line


class LineFilterSet(django_filters.FilterSet):
    class Meta:
        model = Line
        fields = ["plant"]


class DeviceFilterSet(django_filters.FilterSet):
    group = django_filters.NumberFilter(field_name="groups", label="Device group id")
    model = django_filters.CharFilter(lookup_expr="iexact")
    firmware_version = django_filters.CharFilter()

    class Meta:
        model = Device
        fields = ["plant", "line", "kind", "enabled", "model", "firmware_version", "group"]


class DeviceGroupFilterSet(django_filters.FilterSet):
    device = django_filters.NumberFilter(field_name="devices", label="Groups containing this device id")

    class Meta:
        model = DeviceGroup
        fields = ["plant", "device"]


class DeviceTokenFilterSet(django_filters.FilterSet):
    revoked = django_filters.BooleanFilter(field_name="revoked_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = DeviceToken
        fields = ["device", "revoked"]
