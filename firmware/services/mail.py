"""E-mail about rollouts to the people who run them (the plant admins)."""

from django.conf import settings
from django.core.mail import send_mail

from accounts.roles import Role
from accounts.selectors import member_list
from firmware.models import Rollout


def rollout_paused_mail(*, rollout: Rollout) -> int:
    """Tell the plant admins (those with an e-mail address) that ``rollout`` paused itself, with its
    reason and a link to its admin page. Returns the number of recipients (0: nothing sent).

    Raises ``OSError`` when the mail server cannot be reached (the task retries). Not idempotent:
    each call sends again.
    """
    recipients = [user.email for user in member_list(rollout.plant) if user.role == Role.ADMIN and user.email]
    if not recipients:
        return 0
    link = f"{settings.SITE_URL.rstrip('/')}/admin/firmware/rollout/{rollout.pk}/change/"
    send_mail(
        subject=f"[{rollout.plant.name}] Rollout paused: {rollout.name}",
        message=f"The rollout '{rollout.name}' paused itself.\n\nReason: {rollout.pause_reason}\n\n"
        f"Review the failing devices, then resume, retry or roll back:\n{link}\n",
        from_email=None,
        recipient_list=recipients,
    )
    return len(recipients)
