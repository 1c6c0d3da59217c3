"""All management API resources under /api/v1/, one router for the project."""

from rest_framework.routers import DefaultRouter

from accounts.api.api_keys import ApiKeyViewSet, ServiceAccountViewSet
from accounts.api.views import UserViewSet
from alerts.api.views import (
    AlarmViewSet,
    AlertRuleViewSet,
    DeliveryViewSet,
    NotificationChannelViewSet,
    NotificationMuteViewSet,
    NotificationRouteViewSet,
)
from analytics.api.views import OEEReportViewSet, OEEViewSet, ReasonCodeViewSet, ShiftViewSet, StopViewSet
from audit.api.views import AuditEntryViewSet
from commands.api.views import CommandDefinitionViewSet, CommandViewSet
from devices.api.provisioning import ProvisioningKeyViewSet, ProvisioningRequestViewSet
from devices.api.views import (
    DeviceGroupViewSet,
    DeviceTokenViewSet,
    DeviceViewSet,
    LineViewSet,
    MetricViewSet,
    PlantViewSet,
)
from firmware.api.views import FirmwareImageViewSet, RolloutViewSet
from production.api.views import OrderViewSet, ProductViewSet, RunViewSet

router = DefaultRouter()
router.register("users", UserViewSet, basename="user")
router.register("service-accounts", ServiceAccountViewSet, basename="serviceaccount")
router.register("api-keys", ApiKeyViewSet, basename="apikey")
router.register("plants", PlantViewSet, basename="plant")
router.register("lines", LineViewSet, basename="line")
router.register("devices", DeviceViewSet, basename="device")
router.register("device-groups", DeviceGroupViewSet, basename="devicegroup")
router.register("device-tokens", DeviceTokenViewSet, basename="devicetoken")
router.register("provisioning-keys", ProvisioningKeyViewSet, basename="provisioningkey")
router.register("provisioning-requests", ProvisioningRequestViewSet, basename="provisioningrequest")
router.register("metrics", MetricViewSet, basename="metric")
router.register("alert-rules", AlertRuleViewSet, basename="alertrule")
router.register("alarms", AlarmViewSet, basename="alarm")
router.register("notification-channels", NotificationChannelViewSet, basename="notificationchannel")
router.register("notification-routes", NotificationRouteViewSet, basename="notificationroute")
router.register("notification-deliveries", DeliveryViewSet, basename="delivery")
router.register("notification-mutes", NotificationMuteViewSet, basename="notificationmute")
router.register("shifts", ShiftViewSet, basename="shift")
router.register("reason-codes", ReasonCodeViewSet, basename="reasoncode")
router.register("analytics/oee", OEEViewSet, basename="oee")
router.register("analytics/stops", StopViewSet, basename="stop")
router.register("analytics/reports", OEEReportViewSet, basename="oeereport")
router.register("firmware", FirmwareImageViewSet, basename="firmware")
router.register("rollouts", RolloutViewSet, basename="rollout")
router.register("products", ProductViewSet, basename="product")
router.register("orders", OrderViewSet, basename="order")
router.register("runs", RunViewSet, basename="run")
router.register("commands", CommandViewSet, basename="command")
router.register("command-definitions", CommandDefinitionViewSet, basename="commanddefinition")
router.register("audit", AuditEntryViewSet, basename="auditentry")
