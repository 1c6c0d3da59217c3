"""Telemetry history (JSON or streamed CSV) and latest values, as actions of the device and plant viewsets.

``GET /api/v1/devices/<id>/telemetry/?metric=&start=&end=&bucket=`` (CONTRACT.md), its CSV export
at ``/api/v1/devices/<id>/telemetry.csv`` (or ``?format=csv``, or ``Accept: text/csv``),
``GET /api/v1/devices/<id>/latest/`` and ``GET /api/v1/plants/<id>/latest/``. The views parse and
answer HTTP only: reads are in ``devices.selectors``, scoping in ``accounts.selectors``.
"""

import csv
import io
from datetime import UTC, datetime, timedelta

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from accounts.selectors import scope_to_plants
from audit.services import audit_record
from devices.models import Device
from devices.selectors import (
    BUCKET_CHOICES,
    HistoryError,
    device_latest_list,
    device_metrics,
    telemetry_export,
    telemetry_export_all,
    telemetry_history,
)
from devices.services.telemetry_payload import METRIC_NAME
from factory.serializers import OUT_OF_RANGE, QueryDateTimeField

DEFAULT_SPAN = timedelta(hours=24)


class CSVRenderer(BaseRenderer):
    """Lets content negotiation choose CSV; the telemetry action streams the body itself."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        # Only error bodies get here, and finalize_response switches those to JSON first.
        return JSONRenderer().render(data)


def _in_range(value: datetime) -> datetime:
    # Bucket arithmetic counts from 1970 and steps years ahead; far dates would overflow datetime.
    try:
        if 1970 <= value.astimezone(UTC).year <= 9000:
            return value
    except OverflowError:
        pass
    raise serializers.ValidationError(OUT_OF_RANGE)


class TelemetryQuerySerializer(serializers.Serializer):
    metric = serializers.CharField(
        max_length=63,
        required=False,
        help_text="Metric name, e.g. temperature. Required for JSON; a CSV export without it has every metric.",
    )
    start = QueryDateTimeField(required=False, help_text="ISO 8601; default: end minus 24 hours.")
    end = QueryDateTimeField(required=False, help_text="ISO 8601, exclusive; default: now.")
    bucket = serializers.ChoiceField(
        choices=BUCKET_CHOICES,
        default="auto",
        help_text="raw points, or 1m/5m/1h (UTC-aligned), 1d (plant-local days) or auto (at most ~1,500 points).",
        error_messages={"invalid_choice": f'"{{input}}" is not a bucket; use one of {", ".join(BUCKET_CHOICES)}.'},
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "device" in self.context:  # absent only when the schema generator inspects the class
            for name in ("start", "end"):
                self.fields[name].timezone = self.context["device"].plant.tz

    def validate_metric(self, name: str):
        if not METRIC_NAME.match(name):
            raise serializers.ValidationError("Metric names match [a-z][a-z0-9_]{0,62}.")
        device = self.context["device"]
        metrics = device_metrics(device)
        if name not in metrics:
            reported = ", ".join(sorted(metrics)) or "nothing yet"
            raise serializers.ValidationError(f"Device {device.uid} has no metric {name!r}; it reports: {reported}.")
        return metrics[name]

    def validate_start(self, value: datetime) -> datetime:
        return _in_range(value)

    def validate_end(self, value: datetime) -> datetime:
        return _in_range(value)

    def validate(self, data):
        if "metric" not in data and not self.context.get("csv"):
            raise serializers.ValidationError(
                {"metric": ["Name a metric (e.g. ?metric=temperature), or export every metric as CSV (telemetry.csv)."]}
            )
        end = data.get("end") or timezone.now()
        start = data.get("start") or end - DEFAULT_SPAN
        if end <= start:
            raise serializers.ValidationError({"end": ["end must be later than start."]})
        return {**data, "start": start.astimezone(UTC), "end": end.astimezone(UTC)}


class RawPointSerializer(serializers.Serializer):
    ts = serializers.DateTimeField()
    value = serializers.FloatField()


class BucketPointSerializer(serializers.Serializer):
    ts = serializers.DateTimeField(help_text="Bucket start; 1d buckets carry the plant's UTC offset.")
    min = serializers.FloatField()
    max = serializers.FloatField()
    avg = serializers.FloatField()
    count = serializers.IntegerField()
    last = serializers.FloatField(help_text="The value with the latest ts in the bucket.")


class TelemetryHistorySerializer(serializers.Serializer):
    metric = serializers.CharField()
    bucket = serializers.ChoiceField(choices=BUCKET_CHOICES[:-1], help_text="The resolution used (auto resolved).")
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    points = PolymorphicProxySerializer(
        component_name="TelemetryPoint",
        serializers=[RawPointSerializer, BucketPointSerializer],
        resource_type_field_name=None,
        many=True,
    )


class LatestValueSerializer(serializers.Serializer):
    ts = serializers.DateTimeField()
    value = serializers.FloatField()


class DeviceLatestSerializer(serializers.Serializer):
    device = serializers.IntegerField()
    uid = serializers.CharField()
    state = serializers.CharField()
    state_since = serializers.DateTimeField(allow_null=True)
    online = serializers.BooleanField()
    last_seen_at = serializers.DateTimeField(allow_null=True)
    values = serializers.DictField(child=LatestValueSerializer(), help_text="metric name → newest reading")


class PlantLatestSerializer(serializers.Serializer):
    plant = serializers.IntegerField()
    devices = DeviceLatestSerializer(many=True)


def _iso(ts: datetime) -> str:
    text = ts.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _csv_lines(header: tuple, chunks):
    """One CSV text block per chunk of rows (the first datum of a row is its timestamp)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    yield buffer.getvalue()
    for rows in chunks:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows((_iso(row[0]), *row[1:]) for row in rows)
        yield buffer.getvalue()


async def _async_lines(lines):
    # Under ASGI, Django buffers a synchronous iterator whole before sending it; an asynchronous
    # one is sent as it comes. Each step reads one chunk from the database in the request's thread.
    while (block := await sync_to_async(next, thread_sensitive=True)(lines, None)) is not None:
        yield block


def _csv_response(request, device: Device, query: dict, bucket: str, chunks) -> StreamingHttpResponse:
    header = ("ts", "value") if bucket == "raw" else ("ts", "min", "max", "avg", "count", "last")
    if "metric" in query:
        metric = query["metric"].name
    else:  # every metric: its name after the timestamp
        metric, header = "all", (header[0], "metric", *header[1:])
    lines = _csv_lines(header, chunks)
    content = _async_lines(lines) if isinstance(request._request, ASGIRequest) else lines
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    name = f"{device.uid}_{metric}_{bucket}_{query['start'].astimezone(UTC):%Y%m%dT%H%M%SZ}"
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


_TELEMETRY_DOC = """One metric of one device over [start, end).

`bucket=raw` returns readings `{ts, value}` (at most 20,000; else 400). `1m`, `5m`, `1h`, `1d` and
`auto` (the default) return whole buckets `{ts, min, max, avg, count, last}` that intersect the
range, read from rollups: `1m`/`5m`/`1h` are UTC-aligned, `1d` are calendar days in the plant's
time zone (23 or 25 hours on DST days), their `ts` the local midnight with its offset. `auto`
picks the finest bucket giving at most ~1,500 points and reports it in `bucket`.

Timestamps are ISO 8601; one without an offset is read in the plant's time zone. Default range:
the 24 hours before now. Every 400 names the parameter at fault in `errors`.

**CSV export**: `GET /api/v1/devices/{id}/telemetry.csv?...` (or `?format=csv`, or
`Accept: text/csv`) streams the same query as `text/csv` with a header row (`ts,value` or
`ts,min,max,avg,count,last`), with no raw point limit. Without `metric` it exports every metric
the device reports: `ts,metric,value` (or `ts,metric,min,…`), metric by metric, each oldest first."""


class DeviceTelemetryMixin:
    """``telemetry`` (history, JSON or CSV) and ``latest`` for ``DeviceViewSet``."""

    def _device(self) -> Device:
        # The same selector as every scoped queryset: a device of a plant the user cannot see is 404.
        visible = scope_to_plants(Device.objects.select_related("plant"), self.request.user)
        device = get_object_or_404(visible, pk=self.kwargs["pk"])
        self.check_object_permissions(self.request, device)
        return device

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(response, Response) and isinstance(getattr(response, "accepted_renderer", None), CSVRenderer):
            # Errors stay JSON when CSV was asked for: the client must be able to read what to fix.
            response.accepted_renderer, response.accepted_media_type = JSONRenderer(), JSONRenderer.media_type
        return response

    @extend_schema(
        summary="Telemetry history of one metric, or its CSV export",
        description=_TELEMETRY_DOC,
        parameters=[
            TelemetryQuerySerializer,
            OpenApiParameter("format", str, enum=["json", "csv"], description="csv: stream text/csv instead"),
        ],
        responses={
            (200, "application/json"): TelemetryHistorySerializer,
            (200, "text/csv"): OpenApiTypes.STR,
            400: OpenApiResponse(description="`errors` names the parameter: metric, start, end or bucket."),
            404: OpenApiResponse(description="No such device in your plants."),
        },
    )
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, CSVRenderer])
    def telemetry(self, request, pk=None, **kwargs):
        device = self._device()
        csv_wanted = isinstance(request.accepted_renderer, CSVRenderer)
        context = {"device": device, "csv": csv_wanted}
        serializer = TelemetryQuerySerializer(data=request.query_params, context=context)
        serializer.is_valid(raise_exception=True)
        query = serializer.validated_data
        span = (query["start"], query["end"], query["bucket"], device.plant.tz)
        try:
            if not csv_wanted:
                return Response(telemetry_history(device, query["metric"], *span))
            if "metric" in query:
                bucket, chunks = telemetry_export(device, query["metric"], *span)
            else:
                bucket, chunks = telemetry_export_all(device, *span)
            audit_record(
                event="export", obj=device, object_repr=f"{device} telemetry (csv)",
                data={"format": "csv", "metric": query["metric"].name if "metric" in query else "all",
                      "bucket": bucket, "start": query["start"].isoformat(), "end": query["end"].isoformat()},
            )  # fmt: skip
            return _csv_response(request, device, query, bucket, chunks)
        except HistoryError as exc:
            raise serializers.ValidationError({exc.field: [str(exc)]}) from None

    @extend_schema(summary="The device's state and newest value of each metric", responses=DeviceLatestSerializer)
    @action(detail=True, methods=["get"])
    def latest(self, request, pk=None, **kwargs):
        return Response(device_latest_list([self._device()])[0])


class PlantLatestMixin:
    """``latest`` for ``PlantViewSet``: every device of the plant in one call, in constant queries."""

    @extend_schema(summary="State and newest values of every device of the plant", responses=PlantLatestSerializer)
    @action(detail=True, methods=["get"])
    def latest(self, request, pk=None, **kwargs):
        plant = self.get_object()
        devices = list(Device.objects.filter(plant=plant).order_by("uid"))
        return Response({"plant": plant.pk, "devices": device_latest_list(devices)})
