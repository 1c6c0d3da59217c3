"""Audit receivers, connected in ``AuditConfig.ready``.

- ``fill_from_request``: an entry written during a request gets the request's user and client
  address (``audit.middleware``).
- ``login``, ``logout``, ``login_failed``: sign-ins and failed sign-ins (pages, admin and the JWT
  login alike: django-axes' ``AxesTokenObtainPairSerializer`` sends the same signals).
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import pre_save

from audit.middleware import current_request
from audit.models import AuditEntry
from audit.services import audit_record


def fill_from_request(sender, instance, **kwargs):
    request = current_request.get()
    if request is None or not instance._state.adding:
        return
    if instance.actor_id is None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and isinstance(user, get_user_model()):
            instance.actor = user
            instance.actor_email = user.email or None
    if instance.remote_addr is None:
        from factory.clientip import client_ip

        instance.remote_addr = client_ip(request) or None


def login(sender, request, user, **kwargs):
    audit_record(event="login", obj=user, actor=user, request=request)


def logout(sender, request, user, **kwargs):
    if user is not None:
        audit_record(event="logout", obj=user, actor=user, request=request)


def login_failed(sender, credentials, request=None, **kwargs):
    username = str(credentials.get("username") or credentials.get(get_user_model().USERNAME_FIELD) or "")[:150]
    audit_record(event="login_failed", model=get_user_model(), object_repr=username or "(no username)", request=request)


def connect() -> None:
    pre_save.connect(fill_from_request, sender=AuditEntry, dispatch_uid="audit.fill_from_request")
    user_logged_in.connect(login, dispatch_uid="audit.login")
    user_logged_out.connect(logout, dispatch_uid="audit.logout")
    user_login_failed.connect(login_failed, dispatch_uid="audit.login_failed")
