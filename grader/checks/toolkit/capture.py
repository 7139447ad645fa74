"""The capture view: what of a check's spec the probe receives.

A spec holds two kinds of fields. Some tell the probe what to observe: the target, the
arguments that build it, the input shapes, the data to train on. The others only tell the judge
how to decide: the title, the points, thresholds, tolerances, expected answers. The second kind
is marked where it is declared, ``Field(..., json_schema_extra=JUDGE_ONLY)``, on a kind's
``Spec`` or on any model nested in one (a ``dataset`` check's ``loader:`` form, say), and it never
leaves the host: the job the sandbox gets, which the student's code can read, holds each check's
capture view instead of its spec.

* ``capture_view(spec)``: the spec as plain JSON data without its judge-only fields (``id`` and
  ``kind`` are never judge-only);
* ``from_capture_view(cls, view)``: the probe side's spec, an instance of the kind's own ``Spec``
  class whose probe fields are validated by their own types and whose judge-only fields are
  absent, so a probe that reads one raises ``AttributeError`` instead of quietly getting a
  default. Validators that relate several fields are not run again there: the host ran them on
  the whole spec when it loaded the rubric, and some of them read judge-only fields.
"""

from __future__ import annotations

import types
from functools import cache
from typing import Annotated, Any, Literal, Mapping, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, create_model
from pydantic.fields import FieldInfo
from pydantic_core import to_jsonable_python

JUDGE_ONLY: dict[str, Any] = {"judge_only": True}  # also shown in `grader schema`: the field stays on the host

M = TypeVar("M", bound=BaseModel)


def is_judge_only(field: FieldInfo) -> bool:
    extra = field.json_schema_extra
    return isinstance(extra, dict) and extra.get("judge_only") is True


@cache
def judge_only_fields(model: type[BaseModel]) -> frozenset[str]:
    """The names of ``model``'s own judge-only fields (nested models have their own)."""
    return frozenset(name for name, field in model.model_fields.items() if is_judge_only(field))


def capture_view(spec: BaseModel) -> dict[str, Any]:
    """``spec`` as the probe receives it: JSON data, judge-only fields left out at every depth.

    Fields excluded from ordinary dumps (an accuracy check's planned ``run``, which a rubric
    never writes) are part of the view: the exclusion keeps them out of rubric dumps, not out of
    the probe's reach."""
    return _view(spec)


def _view(value: Any) -> Any:
    if isinstance(value, BaseModel):
        hidden = judge_only_fields(type(value))
        return {name: _view(getattr(value, name)) for name in type(value).model_fields if name not in hidden}
    if isinstance(value, (list, tuple)):
        return [_view(item) for item in value]
    if isinstance(value, dict):
        return {key: _view(item) for key, item in value.items()}
    return to_jsonable_python(value)


def from_capture_view(cls: type[M], view: Mapping[str, Any]) -> M:
    """The spec of class ``cls`` rebuilt from its capture view, without its judge-only fields.

    A view that carries a judge-only field, or any field ``cls`` does not know, is rejected: it
    was not made by ``capture_view``."""
    return _restore(_carrier(cls).model_validate(dict(view)))


# A carrier is a model made from another by leaving out its judge-only fields (and carrying its
# nested models likewise): it validates a capture view field by field, with each field's own
# type and constraints, and is turned back into the original class by ``_restore``.
_ORIGINALS: dict[type[BaseModel], type[BaseModel]] = {}


@cache
def _carrier(model: type[BaseModel]) -> type[BaseModel]:
    if not _hides_something(model, frozenset()):
        return model
    hidden = judge_only_fields(model)
    fields: dict[str, Any] = {name: (_carried(field.annotation), field)
                              for name, field in model.model_fields.items() if name not in hidden}
    carrier = create_model(f"{model.__name__}CaptureView", __config__=ConfigDict(
        extra="forbid", arbitrary_types_allowed=True), **fields)
    _ORIGINALS[carrier] = model
    return carrier


def _hides_something(model: type[BaseModel], seen: frozenset[type]) -> bool:
    """Whether ``model`` or a model nested in it has a judge-only field."""
    if judge_only_fields(model):
        return True
    return any(nested not in seen and _hides_something(nested, seen | {model})
               for field in model.model_fields.values() for nested in _models_in(field.annotation))


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def _carried(annotation: Any) -> Any:
    """``annotation`` with every model in it replaced by its carrier (``list[LoaderExpect] | None``
    becomes ``list[LoaderExpectCaptureView] | None``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _carrier(annotation)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is None or origin is Literal or not args:
        return annotation
    carried = tuple(_carried(arg) for arg in args)
    if carried == args:
        return annotation
    if origin is Annotated:
        return Annotated[(carried[0], *annotation.__metadata__)]  # type: ignore[misc]
    if origin in (Union, types.UnionType):
        return Union[carried]  # type: ignore[valid-type]
    return origin[carried]


def _restore(value: Any) -> Any:
    """Carrier instances turned back into their original classes, judge-only fields absent."""
    if isinstance(value, BaseModel) and type(value) in _ORIGINALS:
        original = _ORIGINALS[type(value)]
        values = {name: _restore(getattr(value, name)) for name in type(value).model_fields}
        rebuilt = original.model_construct(_fields_set=set(value.model_fields_set), **values)
        for name in judge_only_fields(original):  # model_construct filled in their defaults
            rebuilt.__dict__.pop(name, None)
        return rebuilt
    if isinstance(value, list):
        return [_restore(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_restore(item) for item in value)
    if isinstance(value, dict):
        return {key: _restore(item) for key, item in value.items()}
    return value
