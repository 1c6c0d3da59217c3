"""The site's few views of its own (the apps hold the pages): the favicon at the root."""

from django.shortcuts import redirect
from django.templatetags.static import static
from django.views.decorators.http import require_safe


@require_safe
def favicon(request):
    """``/favicon.ico``, which browsers ask for on pages that name no icon (the admin, the API's
    JSON, ReDoc): the static icon. A temporary redirect, since the static name changes with the
    icon's content in production (manifest storage)."""
    return redirect(static("img/favicon.ico"))
