from importlib import import_module
from types import ModuleType

from django.apps import AppConfig, apps
from django.contrib.admin.apps import AdminConfig
from django.utils.module_loading import module_has_submodule


class FactoryAdminConfig(AdminConfig):
    """Replaces the default admin site with one that plant admins (not only staff) can use."""

    default_site = "factory.admin.FactoryAdminSite"


class FactoryConfig(AppConfig):
    """The project itself as an app, for its project-wide management commands (``serve``,
    ``sync_schedules``, ``seed_demo``), which gather what each app declares."""

    name = "factory"

    def ready(self):
        from factory import signals  # noqa: F401 - Celery hooks: request ids into tasks, task metrics


def installed_submodules(name: str) -> list[ModuleType]:
    """``<app>.<name>`` of every installed app that has one, in ``INSTALLED_APPS`` order (e.g. each
    app's ``schedules`` or ``demo``, which the project-wide commands gather)."""
    return [
        import_module(f"{config.name}.{name}")
        for config in apps.get_app_configs()
        if module_has_submodule(config.module, name)
    ]
