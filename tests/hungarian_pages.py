"""English left on a page a Hungarian staff member gets: the product's or Django's own.

``english_left(page)`` finds both. The product's: the text of each entry of its apps'
catalogues, cut at the placeholders, the pieces of two or more words that the Hungarian
translation does not keep. Django's: the page's shown text (text nodes, and the
attributes a reader or a screen reader meets) that is one of the msgids of Django's
catalogues which the active Hungarian translation leaves as they are (Django 6's own
Hungarian lacks some; the product supplies them: common/django_strings.py), each
placeholder standing for any text.
"""

import functools
import html
import re
from html.parser import HTMLParser
from pathlib import Path

import django
from babel.messages.pofile import read_po
from django.apps import apps
from django.utils import translation

ROOT = Path(__file__).resolve().parent.parent
PRODUCT_APPS = ("common", "specializations", "licenses", "monitoring", "api")
DJANGO = Path(django.__file__).resolve().parent
PLACEHOLDER = re.compile(r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[sdfr]|%[sd%]|\{\w*\}")
WORD = re.compile(r"[^\W\d_]+\W*", re.UNICODE)
SHOWN_ATTRIBUTES = ("title", "aria-label", "placeholder", "alt")
BUTTON_TYPES = ("submit", "button", "reset")


@functools.cache
def english_fragments(apps: tuple[str, ...] = PRODUCT_APPS) -> frozenset[str]:
    """The English text of each entry of these apps' catalogues, cut at its placeholders:
    the pieces of two or more words that its Hungarian translation does not keep."""
    fragments = set()
    for app in apps:
        with (ROOT / app / "locale/hu/LC_MESSAGES/django.po").open("rb") as handle:
            catalogue = read_po(handle, locale="hu")
        for message in catalogue:
            if not message.id:
                continue
            ids = message.id if isinstance(message.id, tuple) else (message.id,)
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            for text in ids:
                for piece in PLACEHOLDER.split(text):
                    piece = piece.strip(" ;,.:")
                    if len(piece.split()) >= 2 and not any(piece in s for s in strings):
                        fragments.add(piece)
    return frozenset(fragments)


def django_catalogues() -> list[Path]:
    """Django's English server catalogues: its core's and those of the installed contrib apps."""
    paths = [DJANGO / "conf/locale/en/LC_MESSAGES/django.po"]
    for app in apps.get_app_configs():
        path = Path(app.path).resolve() / "locale/en/LC_MESSAGES/django.po"
        if path.is_relative_to(DJANGO) and path.exists():
            paths.append(path)
    return paths


def django_msgids() -> list[tuple[str | None, str, str | None]]:
    """(context, msgid, plural msgid) of every entry of those catalogues."""
    found = []
    for path in django_catalogues():
        with path.open("rb") as handle:
            for message in read_po(handle):
                if not message.id:
                    continue
                if isinstance(message.id, tuple):
                    found.append((message.context, message.id[0], message.id[1]))
                else:
                    found.append((message.context, message.id, None))
    return found


def _untranslated(context, msgid, plural) -> bool:
    if plural is not None:
        return translation.ngettext(msgid, plural, 1) == msgid
    if context is not None:
        return translation.pgettext(context, msgid) == msgid
    return translation.gettext(msgid) == msgid


@functools.cache
def untranslated_patterns() -> tuple[re.Pattern, ...]:
    """A pattern per Django msgid (with letters) that Hungarian leaves in English."""
    patterns = []
    with translation.override("hu"):
        for context, msgid, plural in django_msgids():
            # A word of its own (not "{}st", humanize's ordinal ending), then no Hungarian.
            if not any(WORD.fullmatch(token) for token in msgid.split()):
                continue
            if not _untranslated(context, msgid, plural):
                continue
            for text in (msgid,) if plural is None else (msgid, plural):
                pieces = [re.escape(piece) for piece in PLACEHOLDER.split(text.strip())]
                patterns.append(re.compile(r".+?".join(pieces), re.DOTALL))
    return tuple(patterns)


class _ShownText(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.texts, self._hidden = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "template"):
            self._hidden += 1
        attrs = dict(attrs)
        self.texts += [attrs[name] for name in SHOWN_ATTRIBUTES if attrs.get(name)]
        if tag in ("input", "button") and attrs.get("type") in BUTTON_TYPES and attrs.get("value"):
            self.texts.append(attrs["value"])

    def handle_endtag(self, tag):
        if tag in ("script", "style", "template"):
            self._hidden = max(0, self._hidden - 1)

    def handle_data(self, data):
        if not self._hidden and data.strip():
            self.texts.append(data)


def shown_text(page: str) -> list[str]:
    """A page's text nodes and shown attributes, each whitespace-collapsed."""
    parser = _ShownText()
    parser.feed(page)
    return [" ".join(text.split()) for text in parser.texts]


def django_english_left(page: str) -> list[str]:
    """The page's texts that are one of Django's entries still in English."""
    return sorted(
        {
            text
            for text in shown_text(page)
            if any(pattern.fullmatch(text) for pattern in untranslated_patterns())
        }
    )


def english_left(page: str, apps: tuple[str, ...] = PRODUCT_APPS) -> list[str]:
    """The product's English fragments on the page, then Django's English texts."""
    text = html.unescape(page)
    product = sorted(f for f in english_fragments(apps) if f in text)
    return product + django_english_left(page)
