"""An app's settings read through one place, each with its default and its validation.

Each app declares the settings it reads in its ``conf.py`` (like django-pgtrigger's
settings, read through one module with defaults), and reads them there:
``app_settings.SYNC_REPAIR_BATCH_SIZE``. A host project sets none of them or
any; a value of the wrong type or out of range is an ``ImproperlyConfigured``
naming the setting and the value, when it is read. ``config/settings.py``
overrides them from the environment, read as strictly (``config/env.py``),
with the bounds declared here.
"""

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class Setting:
    """One setting: its name, default (whose type is the setting's), and bounds."""

    name: str
    default: bool | int | float | str
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None  # a text setting's whole value must match it
    pattern_says: str = "in the expected form"  # "... is not <this>"

    @property
    def kind(self) -> type:
        return type(self.default)

    def refuse(self, value, problem: str) -> ImproperlyConfigured:
        return ImproperlyConfigured(f"{self.name}={value!r} {problem}")

    def check(self, value):
        """``value`` as the setting holds it, or ImproperlyConfigured naming it."""
        kind = self.kind
        if kind is bool:
            if not isinstance(value, bool):
                raise self.refuse(value, "is not a boolean (True or False)")
            return value
        if kind is str:
            if not isinstance(value, str):
                raise self.refuse(value, "is not a string")
            if self.pattern and not re.fullmatch(self.pattern, value):
                raise self.refuse(value, f"is not {self.pattern_says}")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.refuse(value, "is not an integer" if kind is int else "is not a number")
        if kind is int and not isinstance(value, int):
            raise self.refuse(value, "is not an integer")
        if not math.isfinite(value):
            raise self.refuse(value, "is not a finite number")
        if self.minimum is not None and value < self.minimum:
            raise self.refuse(value, f"must be at least {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise self.refuse(value, f"must be at most {self.maximum}")
        return kind(value)


class AppSettings:
    """An app's declared settings: ``app_settings.NAME`` is the project's value or the default.

    Read at every access (the ``settings`` test fixture and ``override_settings``
    apply at once). ``rules`` check settings together: each takes a mapping of the
    values and raises ImproperlyConfigured.
    """

    def __init__(self, *declared: Setting, rules: tuple[Callable[[dict], None], ...] = ()):
        self._declared = {setting.name: setting for setting in declared}
        self._rules = rules

    def __iter__(self) -> Iterator[Setting]:
        return iter(self._declared.values())

    def __getattr__(self, name: str):
        try:
            setting = self._declared[name]
        except KeyError:
            raise AttributeError(f"{name} is not a setting of this app") from None
        return setting.check(getattr(settings, name, setting.default))

    def check(self, values: dict | None = None) -> None:
        """Every setting and every rule, over ``values`` (by default the project's settings)."""
        if values is None:
            values = {setting.name: getattr(self, setting.name) for setting in self}
        for rule in self._rules:
            rule(values)
