from devices.models.device import Device, DeviceGroup
from devices.models.plant import Line, Plant, PlantGroupObjectPermission, PlantUserObjectPermission
from devices.models.token import DeviceToken

__all__ = [
    "Device",
    "DeviceGroup",
    "DeviceToken",
    "Line",
    "Plant",
    "PlantGroupObjectPermission",
    "PlantUserObjectPermission",
]
