"""Words chosen now, language chosen when shown: a catalogue entry and its values.

An error or a run's reason is read by staff in their language and by programs
(check_sync's output, the stored English record) in English. A ``Text`` holds the
English template, marked with ``gettext_noop``, and its values; ``str()`` puts it
into words in the language active at that moment (under ``translation.override(None)``:
English). Values are plain (str, int, float, bool, None) or ``Text`` themselves.

``as_json`` / ``from_json`` keep one in a JSONField, so a page shows a recorded reason
in its reader's language. A template whose wording has changed since it was recorded
has no catalogue entry any more and reads in its recorded English.
"""

from __future__ import annotations

from django.utils import translation

PLAIN = (str, int, float, bool, type(None))


def gettext_noop(message: str) -> str:
    """Marks ``message`` for makemessages (which knows this name) and returns it as it is.

    Django's own reads the settings first; this one serves modules that the
    settings themselves load, such as check_sync's start-up.
    """
    return message


class Text:
    __slots__ = ("template", "params")

    def __init__(self, template: str, /, **params):
        self.template, self.params = template, params

    def __str__(self) -> str:
        values = {name: str(v) if isinstance(v, Text) else v for name, v in self.params.items()}
        try:
            return translation.gettext(self.template) % values
        except (KeyError, ValueError, TypeError):
            # A translation that does not fit the recorded values: the English still does.
            return self.template % values

    def english(self) -> str:
        with translation.override(None):
            return str(self)

    def as_json(self) -> dict:
        params = {}
        for name, value in self.params.items():
            if isinstance(value, Text):
                value = value.as_json()
            elif not isinstance(value, PLAIN):
                value = str(value)
            params[name] = value
        return {"text": self.template, "params": params}

    @classmethod
    def from_json(cls, data: dict) -> Text:
        params = {
            name: cls.from_json(value) if isinstance(value, dict) else value
            for name, value in data.get("params", {}).items()
        }
        return cls(data["text"], **params)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Text):
            return NotImplemented
        return (self.template, self.params) == (other.template, other.params)

    __hash__ = None

    def __repr__(self) -> str:
        return f"Text({self.template!r}, **{self.params!r})"
