"""The plant admin's "Members and roles" page: who holds which role, grant, change and remove."""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from accounts.roles import PERM_MANAGE, Role
from accounts.selectors import member_list, user_has_plant_perm
from accounts.services import member_remove, member_set_role


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices)

    def clean_username(self):
        user = get_user_model().objects.filter(username=self.cleaned_data["username"]).first()
        if user is None:
            raise ValidationError("No user with this username. A superuser creates accounts under Users.")
        return user


def _member_or_404(plant, value):
    """The user with pk ``value`` holding any role on ``plant``; 404 for anything else (not a number included)."""
    try:
        pk = int(value)
    except (TypeError, ValueError):
        raise Http404("No such member of this plant.") from None
    # Not member_list(): its role annotation yields one row per role, and a user put into two role
    # groups by hand would make a get() fail with MultipleObjectsReturned.
    user = get_user_model().objects.filter(pk=pk, groups__plant_role__plant=plant).first()
    if user is None:
        raise Http404("No such member of this plant.")
    return user


class PlantMembersMixin:
    """Adds ``<plant>/members/`` to the plant admin. Only the plant's admins (and superusers) may use it."""

    def get_urls(self):
        extra = [path("<int:pk>/members/", self.admin_site.admin_view(self.members_view), name="devices_plant_members")]
        return extra + super().get_urls()

    @staticmethod
    def members_link(plant):
        if plant.pk is None:
            return "Save the plant first."
        return format_html(
            '<a href="{}">Members and roles</a>', reverse("admin:devices_plant_members", args=[plant.pk])
        )

    def _after_change(self, request, plant):
        # An admin who just gave up their own admin role may no longer see this page.
        if user_has_plant_perm(request.user, PERM_MANAGE, plant):
            return redirect(request.path)
        return redirect("admin:index")

    def members_view(self, request, pk):
        plant = get_object_or_404(self.get_queryset(request), pk=pk)
        if not user_has_plant_perm(request.user, PERM_MANAGE, plant):
            raise PermissionDenied
        form = MemberForm(request.POST if request.method == "POST" and "grant" in request.POST else None)
        if request.method == "POST":
            try:
                if "remove" in request.POST:
                    user = _member_or_404(plant, request.POST["remove"])
                    member_remove(plant=plant, user=user)
                    self.message_user(request, f"Removed {user.username} from {plant}.")
                    return self._after_change(request, plant)
                if form.is_valid():
                    member_set_role(plant=plant, user=form.cleaned_data["username"], role=form.cleaned_data["role"])
                    self.message_user(
                        request, f"{form.cleaned_data['username'].username} is now {form.cleaned_data['role']}."
                    )
                    return self._after_change(request, plant)
            except ValidationError as exc:
                self.message_user(request, "; ".join(exc.messages), messages.ERROR)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Members and roles of {plant}",
            "plant": plant,
            "members": member_list(plant),
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/devices/plant_members.html", context)
