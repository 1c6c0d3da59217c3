from devices.models.device import Device, DeviceGroup
from devices.models.plant import Line, Plant, PlantGroupObjectPermission, PlantUserObjectPermission
from devices.models.provisioning import ProvisioningKey, ProvisioningRequest
from devices.models.telemetry import (
    DeadLetter,
    LatestValue,
    MachineState,
    Metric,
    RollupPending,
    TelemetryReading,
    TelemetryRollup1h,
    TelemetryRollup1m,
)
from devices.models.token import DeviceToken

__all__ = [
    "DeadLetter",
    "LatestValue",
    "MachineState",
    "Metric",
    "RollupPending",
    "TelemetryReading",
    "TelemetryRollup1h",
    "TelemetryRollup1m",
    "Device",
    "DeviceGroup",
    "DeviceToken",
    "Line",
    "Plant",
    "PlantGroupObjectPermission",
    "PlantUserObjectPermission",
    "ProvisioningKey",
    "ProvisioningRequest",
]
