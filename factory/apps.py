from django.contrib.admin.apps import AdminConfig


class FactoryAdminConfig(AdminConfig):
    """Replaces the default admin site with one that plant admins (not only staff) can use."""

    default_site = "factory.admin.FactoryAdminSite"
