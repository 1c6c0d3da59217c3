"""Strict list filters: a value the filter cannot read answers 400, an invisible ``?plant=`` 404.

django-filter reads ``?enabled=-16667241`` as "no filter" (its boolean widget maps anything
unknown to None) and ``?plant=0.5`` as a decimal, so a client's typo silently lists everything.
Here every boolean takes only true/false/1/0, every id a whole number, and a plant the user
cannot see answers 404 as ``GET /api/v1/analytics/oee/?plant=`` does (CONTRACT.md: invisible is 404).
"""

import django_filters
from django import forms
from django.db import models
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.utils import translate_validation
from rest_framework.exceptions import NotFound

from accounts.selectors import plant_list_for

_TRUE, _FALSE = ("true", "1"), ("false", "0")


class StrictBooleanField(forms.NullBooleanField):
    widget = forms.TextInput  # the raw value reaches to_python (NullBooleanSelect maps unknown to None)

    def to_python(self, value):
        if value in (None, ""):
            return None
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise forms.ValidationError(f"Give true or false, not '{value}'.", code="invalid")

    def validate(self, value):
        pass


class BooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class IntegerFilter(django_filters.NumberFilter):
    """A whole number (NumberFilter reads decimals: ``?stage=0.5``)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        # Bounded: a 20-digit value would overflow the database's integer (SQLite raises, a 500).
        kwargs.setdefault("min_value", -(2**63))
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class IdFilter(IntegerFilter):
    """A plain id (whole number from 1), not a ModelChoiceFilter: its unscoped choices would answer 400
    for a missing id but 200 for another plant's, telling a user which ids exist in plants they cannot see."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        super().__init__(*args, **kwargs)


class FilterSet(django_filters.rest_framework.FilterSet):
    """The base of every filter set (and of those ``filterset_fields`` builds): strict booleans and ids."""

    FILTER_DEFAULTS = {
        **django_filters.rest_framework.FilterSet.FILTER_DEFAULTS,
        models.BooleanField: {"filter_class": BooleanFilter},
        models.NullBooleanField: {"filter_class": BooleanFilter},
        models.ForeignKey: {"filter_class": IdFilter},
        models.OneToOneField: {"filter_class": IdFilter},
        models.AutoField: {"filter_class": IdFilter},
        models.BigAutoField: {"filter_class": IdFilter},
        models.IntegerField: {"filter_class": IntegerFilter},
        models.PositiveIntegerField: {"filter_class": IntegerFilter},
        models.PositiveSmallIntegerField: {"filter_class": IntegerFilter},
        models.SmallIntegerField: {"filter_class": IntegerFilter},
        models.BigIntegerField: {"filter_class": IntegerFilter},
    }


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend with our base filter set; ``?plant=`` must name a plant you can see."""

    filterset_base = FilterSet

    def filter_queryset(self, request, queryset, view):
        filterset = self.get_filterset(request, queryset, view)
        if filterset is None:
            return queryset
        if not filterset.is_valid():
            raise translate_validation(filterset.errors)
        plant = filterset.form.cleaned_data.get("plant")
        by_plant = isinstance(filterset.filters.get("plant"), IdFilter) and plant is not None
        if by_plant and not plant_list_for(request.user).filter(pk=plant).exists():
            raise NotFound("No such plant among the plants you can see: ?plant= takes the id of one of yours.")
        return filterset.qs
