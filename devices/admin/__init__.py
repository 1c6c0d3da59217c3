import devices.admin.dead_letters  # noqa: F401  (registers the dead-letter admin)
import devices.admin.metrics  # noqa: F401  (registers the metric admin)
import devices.admin.provisioning  # noqa: F401  (registers the provisioning key and request admins)
from devices.admin import registry  # noqa: F401  (registers the model admins)
