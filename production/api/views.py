"""Products, production orders (with CSV/XLSX import) and runs (start, end) under ``/api/v1/``.

Views parse HTTP only: writes in ``production.services``, plant scoping through
``PlantScopedViewSetMixin`` (an invisible plant's object answers 404, a visible one without the
role 403). Products are plant master data (admin role); orders and runs are the shop floor's and
an ERP's (operator role, also with an integration API key of a service account holding it).
"""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from accounts.api.scoping import PlantScopedViewSetMixin
from accounts.roles import PERM_MANAGE, PERM_OPERATE
from factory.serializers import call_service
from production.api.serializers import (
    OrderImportSerializer,
    OrderSerializer,
    ProductSerializer,
    RunEndSerializer,
    RunSerializer,
    RunStartSerializer,
)
from production.models import Order, Product, Run, Source
from production.selectors import order_list_for, product_list_for, run_list_for
from production.services.catalog import order_delete
from production.services.imports import OrderFileError, orders_import, read_orders_file
from production.services.runs import run_end, run_start


class ProductViewSet(PlantScopedViewSetMixin, viewsets.ModelViewSet):
    """Products per plant with their ideal cycle times per machine or line. Plant admins write."""

    queryset = Product.objects.select_related("plant").prefetch_related("cycle_times")
    serializer_class = ProductSerializer
    filterset_fields = ["plant", "code", "active", "source"]
    search_fields = ["code", "name"]
    ordering_fields = ["code", "name", "created_at"]
    write_perm = PERM_MANAGE

    def get_queryset(self):
        return product_list_for(self.request.user)


class OrderViewSet(PlantScopedViewSetMixin, viewsets.ModelViewSet):
    """Production orders. Operators (and an ERP's API key with the operator role) create, change and import
    them; deleting one that never ran needs the admin role."""

    queryset = Order.objects.all()
    serializer_class = OrderSerializer
    filterset_fields = ["plant", "number", "status", "product", "line", "source", "due_date"]
    search_fields = ["number", "note", "product__code"]
    ordering_fields = ["due_date", "number", "created_at"]
    write_perm = PERM_OPERATE
    action_perms = {"destroy": PERM_MANAGE}

    def get_queryset(self):
        return order_list_for(self.request.user)

    def perform_destroy(self, instance):
        call_service(order_delete, order=instance)

    @extend_schema(request={"multipart/form-data": OrderImportSerializer}, responses={201: dict, 200: dict, 400: dict})
    @action(detail=False, methods=["post"], url_path="import", parser_classes=[MultiPartParser, FormParser])
    def import_orders(self, request):
        """Import a plant's orders from CSV or XLSX (columns number, product, quantity, due_date, line,
        machines, status, note; an existing number is updated). ``dry_run`` previews each row and changes
        nothing; otherwise the file applies only when every row is good (201), else nothing (400)."""
        body = OrderImportSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        plant = body.validated_data["plant"]
        self.check_plant_perm(plant, PERM_OPERATE)
        upload = body.validated_data["file"]
        try:
            dataset = read_orders_file(upload.read(), upload.name)
        except OrderFileError as exc:
            raise ValidationError({"file": [str(exc)]}) from exc
        report = orders_import(plant=plant, dataset=dataset, dry_run=body.validated_data["dry_run"]).as_dict()
        if not report["valid"]:
            return Response(report, status=status.HTTP_400_BAD_REQUEST)
        return Response(report, status=status.HTTP_200_OK if report["dry_run"] else status.HTTP_201_CREATED)


class RunViewSet(PlantScopedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """What machines made: runs of products and orders. Operators start (``POST``) and end them."""

    queryset = Run.objects.all()
    serializer_class = RunSerializer
    plant_field = "device__plant"
    filterset_fields = {"device": ["exact"], "product": ["exact"], "order": ["exact"], "source": ["exact"],
                        "end": ["isnull"], "start": ["gte", "lt"]}  # fmt: skip
    ordering_fields = ["start"]
    write_perm = PERM_OPERATE

    def get_queryset(self):
        return run_list_for(self.request.user)

    @extend_schema(request=RunStartSerializer, responses={201: RunSerializer})
    def create(self, request):
        """Start a run of an order (its product) or a product on a machine, now or at ``start``. The machine's
        open run ends there; the time until it runs again is the changeover (setup loss)."""
        body = RunStartSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        device = body.validated_data["device"]
        self.check_plant_perm(device.plant, PERM_OPERATE)
        run = call_service(
            run_start, device=device, product=body.validated_data.get("product"),
            order=body.validated_data.get("order"), at=body.validated_data.get("start"), by=request.user,
            source=Source.OPERATOR if request.auth is None else Source.API,
        )  # fmt: skip
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RunEndSerializer, responses=RunSerializer)
    @action(detail=True, methods=["post"])
    def end(self, request, pk=None):
        """End an open run now or at ``end``; ``complete`` marks its order done."""
        run = self.get_object()
        body = RunEndSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        run = call_service(
            run_end, run=run, at=body.validated_data.get("end"), by=request.user,
            complete=body.validated_data["complete"],
        )  # fmt: skip
        return Response(RunSerializer(run).data)
