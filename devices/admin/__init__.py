import devices.admin.dead_letters  # noqa: F401  (registers the dead-letter admin)
import devices.admin.metrics  # noqa: F401  (registers the metric admin)
from devices.admin import registry  # noqa: F401  (registers the model admins)
