"""Admin pages for products (cycle times inline), orders (with CSV/XLSX import) and runs, scoped to
the plants the user administers. Writes go through ``production.services``, as in the API."""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from import_export.admin import ImportMixin
from import_export.formats.base_formats import CSV, XLSX
from import_export.forms import ConfirmImportForm, ImportForm

from accounts.admin_scoping import PlantScopedAdmin, administers_any
from accounts.roles import PERM_MANAGE
from accounts.selectors import plant_list_for
from devices.models import Plant
from production.models import Order, Product, ProductCycleTime, Run, Source
from production.services.catalog import order_save, product_save
from production.services.imports import OrderResource
from production.services.runs import run_delete, run_overlap, run_save, run_times_check


class ScopedProductionChoices:
    """Product and order choices only of the plants the user administers (as ``PlantScopedAdmin`` does for
    plants, lines and machines)."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model in (Product, Order):
            kwargs["queryset"] = db_field.related_model.objects.filter(
                plant__in=plant_list_for(request.user, PERM_MANAGE)
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class CycleTimeInline(admin.TabularInline):
    model = ProductCycleTime
    extra = 1
    fields = ["device", "line", "seconds", "changeover_target"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        return self.admin_site._registry[Product].formfield_for_foreignkey(db_field, request, **kwargs)

    # Plant admins hold no global model permissions: the rows follow their product's plant.
    def _may(self, request, obj) -> bool:
        return self.admin_site._registry[Product]._may(request, obj)

    def has_view_permission(self, request, obj=None):
        return self._may(request, obj)

    def has_add_permission(self, request, obj=None):
        return self._may(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._may(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._may(request, obj)


@admin.register(Product)
class ProductAdmin(PlantScopedAdmin):
    list_display = ["code", "name", "plant", "units_per_cycle", "changeover_target", "source", "active"]
    list_filter = ["plant", "source", "active"]
    search_fields = ["code", "name"]
    inlines = [CycleTimeInline]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        product_save(product=form.instance)  # open runs take the new cycle time; their stored days are recomputed


class OrderImportForm(ImportForm):
    plant = forms.ModelChoiceField(queryset=Plant.objects.none(), help_text="The plant whose orders the file holds.")

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["plant"].queryset = plant_list_for(user, PERM_MANAGE)


class OrderConfirmImportForm(ConfirmImportForm):
    plant = forms.ModelChoiceField(queryset=Plant.objects.all(), widget=forms.HiddenInput())


@admin.register(Order)
class OrderAdmin(ScopedProductionChoices, ImportMixin, PlantScopedAdmin):
    """Orders; "Import" reads a plant's orders from CSV/XLSX (``production.services.imports``) with a preview."""

    list_display = ["number", "product", "quantity", "due_date", "line", "status", "source", "plant"]
    list_filter = ["plant", "status", "source"]
    search_fields = ["number", "product__code", "note"]
    resource_classes = [OrderResource]
    import_formats = [CSV, XLSX]
    import_form_class = OrderImportForm
    confirm_form_class = OrderConfirmImportForm

    def has_import_permission(self, request):
        return administers_any(request)

    def get_import_form_kwargs(self, request):
        return {**super().get_import_form_kwargs(request), "user": request.user}

    def get_confirm_form_initial(self, request, import_form):
        initial = super().get_confirm_form_initial(request, import_form)
        if import_form is not None:
            initial["plant"] = import_form.cleaned_data["plant"].pk
        return initial

    def get_import_resource_kwargs(self, request, **kwargs):
        form = kwargs.get("form")
        plant = form.cleaned_data.get("plant") if form is not None and hasattr(form, "cleaned_data") else None
        if plant is not None and not plant_list_for(request.user, PERM_MANAGE).filter(pk=plant.pk).exists():
            plant = None  # a forged hidden field: the resource then finds nothing of any plant
        return {"plant": plant}

    def save_model(self, request, obj, form, change):
        pass  # saved with its machines in save_related, through the service

    def save_related(self, request, form, formsets, change):
        if not change:
            form.instance.source = Source.ADMIN
        order_save(order=form.instance, machines=list(form.cleaned_data.get("machines", [])))


class RunForm(forms.ModelForm):
    class Meta:
        model = Run
        fields = ["device", "product", "order", "start", "end", "ideal_cycle_time", "changeover_target"]

    def clean(self):
        data = super().clean()
        run = self.instance
        for name in self.Meta.fields:
            if name in data:
                setattr(run, name, data[name])
        if run.source == "":
            run.source = Source.ADMIN
        try:
            run.full_clean(validate_constraints=False)
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None
        if run.device_id and run.start:
            try:
                run_times_check(run)
            except ValidationError as exc:
                raise ValidationError(exc.messages) from None
            clash = run_overlap(run)
            if clash is not None:
                raise ValidationError(f"Overlaps the machine's run from {clash.start:%Y-%m-%d %H:%M:%S}.")
        return data


@admin.register(Run)
class RunAdmin(ScopedProductionChoices, PlantScopedAdmin):
    """Runs: correct a start, end, product, order or cycle time; stored OEE days are recomputed."""

    form = RunForm
    plant_field = "device__plant"
    list_display = ["device", "product", "order", "start", "end", "ideal_cycle_time", "source"]
    list_filter = ["source", "device__plant"]
    search_fields = ["device__uid", "product__code", "order__number"]
    date_hierarchy = "start"

    def save_model(self, request, obj, form, change):
        previous = Run.objects.filter(pk=obj.pk).values_list("start", flat=True).first() if change else None
        if not change:
            obj.started_by = request.user
        run_save(run=obj, previous_start=previous)  # the form checked for overlaps already

    def delete_model(self, request, obj):
        run_delete(run=obj)

    def delete_queryset(self, request, queryset):
        for run in queryset:
            run_delete(run=run)
