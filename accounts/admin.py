from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AdminSplitDateTime
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.template.response import TemplateResponse
from django.utils import timezone

from accounts.admin_scoping import administers_any
from accounts.models import ApiKey, PlantRole, ServiceAccount, User
from accounts.roles import PERM_MANAGE, Role
from accounts.selectors import (
    api_key_list_for,
    plant_list_for,
    service_account_list_for,
    service_account_manageable_by,
    service_account_plants,
)
from accounts.services import api_key_issue, api_key_revoke, service_account_create
from devices.models import Plant


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Accounts are managed by superusers; plant admins grant roles on the plant's members page."""

    list_display = ["username", "email", "first_name", "last_name", "is_active", "is_superuser", "last_login"]


@admin.register(PlantRole)
class PlantRoleAdmin(admin.ModelAdmin):
    list_display = ["plant", "role", "group"]
    list_filter = ["role", "plant"]
    readonly_fields = ["plant", "role", "group"]

    def has_add_permission(self, request):
        return False  # created with the plant


class _PlantAdminsOnly:
    """Superusers, and plant admins for the service accounts holding a role on a plant they administer."""

    def _administers_any(self, request) -> bool:
        return administers_any(request)

    def _visible(self, request, obj) -> bool:
        return self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_module_permission(self, request):
        return self._administers_any(request)

    def has_view_permission(self, request, obj=None):
        return self._administers_any(request) if obj is None else self._visible(request, obj)

    def has_change_permission(self, request, obj=None):
        return self.has_view_permission(request, obj)

    def has_add_permission(self, request):
        return self._administers_any(request)

    def has_delete_permission(self, request, obj=None):
        return False  # revoke keys (or disable the account) instead: the audit trail stays


class ServiceAccountAddForm(forms.ModelForm):
    name = forms.RegexField(r"^[\w.@+-]{1,150}$", help_text="Letters, digits and @/./+/-/_, e.g. sap-erp.")
    plant = forms.ModelChoiceField(queryset=Plant.objects.none(), help_text="Its first plant (more: plant members).")
    role = forms.ChoiceField(choices=Role.choices)

    class Meta:
        model = ServiceAccount
        fields = ["name", "description", "plant", "role"]

    def clean_name(self):
        name = self.cleaned_data["name"]
        if User.objects.filter(username=name).exists():
            raise forms.ValidationError(f"A user or service account named '{name}' exists; choose another name.")
        return name


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    fields = readonly_fields = ["name", "prefix", "expires_at", "last_used_at", "revoked_at", "created_by"]
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ServiceAccount)
class ServiceAccountAdmin(_PlantAdminsOnly, admin.ModelAdmin):
    """Integrations (ERP, MES, scripts); their keys are issued on the API keys page."""

    list_display = ["name", "description", "plant_roles", "is_active", "created_at"]
    search_fields = ["user__username", "description"]
    inlines = [ApiKeyInline]

    def get_queryset(self, request):
        return service_account_list_for(request.user)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None:
            return super().get_form(request, obj, change=change, **kwargs)
        form = super().get_form(request, obj, change=change, form=ServiceAccountAddForm, **kwargs)
        form.base_fields["plant"].queryset = plant_list_for(request.user, PERM_MANAGE)
        return form

    def get_fields(self, request, obj=None):
        return ["name", "description", "plant", "role"] if obj is None else ["name", "description", "plant_roles"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["name", "plant_roles"]

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        data = form.cleaned_data
        account = service_account_create(
            name=data["name"], plant=data["plant"], role=data["role"], description=data["description"], by=request.user
        )
        obj.pk, obj.user = account.pk, account.user
        obj._state.adding = False

    @admin.display(ordering="user__username")
    def name(self, account):
        return account.user.username

    @admin.display(description="Roles")
    def plant_roles(self, account):
        roles = service_account_plants(account)
        names = dict(Plant.objects.filter(pk__in=roles).values_list("pk", "name"))
        return ", ".join(f"{names[pk]}: {role}" for pk, role in roles.items()) or "–"

    @admin.display(boolean=True, description="Active")
    def is_active(self, account):
        return account.user.is_active


class ApiKeyAddForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["account", "name", "expires_at"]

    expires_at = forms.SplitDateTimeField(
        required=False, widget=AdminSplitDateTime, help_text="Empty: in API_KEY_DEFAULT_DAYS (365) days."
    )

    def clean_expires_at(self):
        expires_at = self.cleaned_data["expires_at"]
        if expires_at is not None and expires_at <= timezone.now():
            raise forms.ValidationError("Choose a time in the future.")
        return expires_at


@admin.register(ApiKey)
class ApiKeyAdmin(_PlantAdminsOnly, admin.ModelAdmin):
    """Review, issue (the key is shown once, on the page after saving) and revoke service accounts' keys."""

    list_display = ["name", "account", "prefix", "expires_at", "active", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "account__user__username"]
    actions = ["revoke"]

    def get_queryset(self, request):
        return api_key_list_for(request.user)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["account", "name", "expires_at"]
        return ["account", "name", "prefix", "expires_at", "created_at", "created_by", "last_used_at", "revoked_at"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None:
            return super().get_form(request, obj, change=change, **kwargs)
        form = super().get_form(request, obj, change=change, form=ApiKeyAddForm, **kwargs)
        # A key reaches every plant of its account: only accounts whose every plant the user administers.
        visible = service_account_list_for(request.user)
        manageable = [account.pk for account in visible if service_account_manageable_by(request.user, account)]
        form.base_fields["account"].queryset = ServiceAccount.objects.filter(pk__in=manageable).select_related("user")
        return form

    def save_model(self, request, obj, form, change):
        if change:
            return
        key, plain = api_key_issue(
            account=obj.account, name=obj.name, expires_at=form.cleaned_data.get("expires_at"), by=request.user
        )
        obj.pk, obj.prefix, obj.expires_at = key.pk, key.prefix, key.expires_at
        obj._state.adding = False
        request._issued_api_key = plain

    def response_add(self, request, obj, post_url_continue=None):
        # Rendered directly (never stored in a message or the session): the only place the key appears.
        context = {**self.admin_site.each_context(request), "title": "New API key", "key": obj,
                   "plain": request._issued_api_key}  # fmt: skip
        return TemplateResponse(request, "admin/accounts/issued_api_key.html", context)

    @admin.display(boolean=True)
    def active(self, key):
        return key.refusal(timezone.now()) is None

    @admin.action(description="Revoke selected keys (their next request is refused)")
    def revoke(self, request, queryset):
        count = sum(api_key_revoke(key=key) for key in queryset)
        self.message_user(request, f"Revoked {count} API key(s).")
