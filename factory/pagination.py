from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """Page-number pagination; clients may ask for 1 to 1,000 rows with ``?page_size=``.

    A ``page_size`` that is not a whole number in that range answers 400 (DRF would silently
    use the default, and the client would not notice it got fewer rows than it asked for).
    """

    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request):
        value = request.query_params.get(self.page_size_query_param)
        if value is None:
            return self.page_size
        if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= self.max_page_size:
            raise ValidationError(
                {self.page_size_query_param: [f"Give a whole number from 1 to {self.max_page_size}, not '{value}'."]}
            )
        return int(value)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=self.max_page_size)
            elif parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
        return parameters


def paginated_response(view, queryset, serializer_class, **serializer_kwargs):
    """A detail action's list (a device's tokens, an alarm's events…) paginated like every list endpoint."""
    page = view.paginate_queryset(queryset)
    return view.get_paginated_response(serializer_class(page, many=True, **serializer_kwargs).data)
