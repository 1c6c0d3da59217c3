"""API shapes of products (with cycle times per machine or line), orders, runs and the order import."""

from rest_framework import serializers

from accounts.api.scoping import ScopedPrimaryKeyRelatedField
from devices.models import Device, Line, Plant
from factory.serializers import StrictSerializerMixin, call_service
from production.models import Order, Product, ProductCycleTime, Run
from production.services.catalog import order_save, product_save
from production.services.imports import COLUMNS


class CycleTimeSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    device = ScopedPrimaryKeyRelatedField(queryset=Device.objects.all(), required=False, allow_null=True)
    line = ScopedPrimaryKeyRelatedField(queryset=Line.objects.all(), required=False, allow_null=True)

    class Meta:
        model = ProductCycleTime
        fields = ["device", "line", "seconds", "changeover_target"]


class ProductSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    plant = ScopedPrimaryKeyRelatedField(plant_field="", queryset=Plant.objects.all())
    cycle_times = CycleTimeSerializer(
        many=True, required=False,
        help_text="Ideal seconds per cycle on a machine or on every machine of a line (the machine's wins). "
        "Writing the list replaces it. Without one, a machine runs the product at its own ideal cycle time.",
    )  # fmt: skip

    class Meta:
        model = Product
        fields = [
            "id", "plant", "code", "name", "units_per_cycle", "changeover_target", "active", "source", "cycle_times",
            "created_at", "updated_at",
        ]  # fmt: skip
        validators = []  # the unique code is checked by the service, naming the field

    def get_fields(self):
        fields = super().get_fields()
        if isinstance(self.instance, Product):
            fields["plant"].read_only = True
        return fields

    def plant_for_create(self, data):
        return data["plant"]

    def _save(self, instance, data):
        rows = data.pop("cycle_times", None)
        for name, value in data.items():
            setattr(instance, name, value)
        return call_service(product_save, product=instance, cycle_times_rows=rows)

    def create(self, validated_data):
        return self._save(Product(source="api"), validated_data)

    def update(self, instance, validated_data):
        return self._save(instance, validated_data)


class OrderSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    plant = ScopedPrimaryKeyRelatedField(plant_field="", queryset=Plant.objects.all())
    product = ScopedPrimaryKeyRelatedField(queryset=Product.objects.all(), required=False, allow_null=True)
    product_code = serializers.CharField(
        required=False, write_only=True, help_text="The product by its code in the order's plant (instead of its id)."
    )
    line = ScopedPrimaryKeyRelatedField(queryset=Line.objects.all(), required=False, allow_null=True)
    machines = ScopedPrimaryKeyRelatedField(queryset=Device.objects.all(), many=True, required=False)

    class Meta:
        model = Order
        fields = [
            "id", "plant", "number", "product", "product_code", "quantity", "due_date", "line", "machines", "status",
            "note", "source", "created_at", "updated_at",
        ]  # fmt: skip
        validators = []

    def get_fields(self):
        fields = super().get_fields()
        if isinstance(self.instance, Order):
            fields["plant"].read_only = True
        return fields

    def validate(self, data):
        plant = data.get("plant") or getattr(self.instance, "plant", None)
        code = data.pop("product_code", None)
        if code is not None:
            found = Product.objects.filter(plant=plant, code=code).first()
            if found is None:
                raise serializers.ValidationError({"product_code": [f"No product '{code}' in plant '{plant}'."]})
            data["product"] = found
        number = data.get("number", getattr(self.instance, "number", None))
        clash = Order.objects.filter(plant=plant, number=number).exclude(pk=getattr(self.instance, "pk", None))
        if clash.exists():
            raise serializers.ValidationError({"number": [f"Plant '{plant}' already has an order {number}."]})
        return data

    def plant_for_create(self, data):
        return data["plant"]

    def _save(self, instance, data):
        machines = data.pop("machines", None)
        for name, value in data.items():
            setattr(instance, name, value)
        return call_service(order_save, order=instance, machines=machines)

    def create(self, validated_data):
        return self._save(Order(source="api"), validated_data)

    def update(self, instance, validated_data):
        return self._save(instance, validated_data)


class RunSerializer(serializers.ModelSerializer):
    product_code = serializers.CharField(source="product.code", read_only=True, default=None)
    order_number = serializers.CharField(source="order.number", read_only=True, default=None)
    ideal_cycle_time = serializers.DecimalField(
        max_digits=16, decimal_places=9, read_only=True,
        help_text="Ideal seconds per piece in this run; null: the machine's own.",
    )  # fmt: skip

    class Meta:
        model = Run
        fields = [
            "id", "device", "product", "product_code", "order", "order_number", "start", "end", "ideal_cycle_time",
            "changeover_target", "source", "started_by", "ended_by", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class RunStartSerializer(StrictSerializerMixin, serializers.Serializer):
    device = ScopedPrimaryKeyRelatedField(queryset=Device.objects.select_related("plant", "line"))
    order = ScopedPrimaryKeyRelatedField(queryset=Order.objects.all(), required=False, allow_null=True)
    product = ScopedPrimaryKeyRelatedField(queryset=Product.objects.all(), required=False, allow_null=True)
    start = serializers.DateTimeField(required=False, help_text="Default now; may be earlier than now.")


class RunEndSerializer(StrictSerializerMixin, serializers.Serializer):
    end = serializers.DateTimeField(required=False, help_text="Default now.")
    complete = serializers.BooleanField(default=False, help_text="Also mark the run's order done.")


class OrderImportSerializer(StrictSerializerMixin, serializers.Serializer):
    plant = ScopedPrimaryKeyRelatedField(plant_field="", queryset=Plant.objects.all())
    file = serializers.FileField(help_text=f"CSV (UTF-8) or XLSX; columns: {', '.join(COLUMNS)}.")
    dry_run = serializers.BooleanField(default=False)
