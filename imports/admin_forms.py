"""The admin's two forms that start an import: a file's upload; a run of the configured source."""

from pathlib import Path

from django import forms
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from specializations.exceptions import ProgressionError
from specializations.services import require_source

# What import_progress reads as CSV (.csv) or JSON Lines (the others).
SUFFIXES = (".csv", ".jsonl", ".ndjson", ".json")


class FileImportForm(forms.Form):
    file = forms.FileField(
        label=_("file"),
        max_length=200,
        help_text=_("Progress events, UTF-8: CSV with a header row (.csv) or JSON Lines (.jsonl)."),
    )
    ledger_source = forms.CharField(
        label=_("ledger source"),
        required=False,
        max_length=100,
        help_text=_(
            "Empty: import:<file name>. Keys are unique per source: the same file under the"
            " same source again changes nothing."
        ),
    )
    dry_run = forms.BooleanField(
        label=_("dry run"), required=False, help_text=_("Check the file and report; write nothing.")
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        name = Path(upload.name).name
        if Path(name).suffix.lower() not in SUFFIXES:
            raise forms.ValidationError(
                _("“%(name)s” is not a .csv or .jsonl file."), params={"name": name}
            )
        if not upload.size:
            raise forms.ValidationError(_("“%(name)s” is empty."), params={"name": name})
        return upload

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload is not None:
            source = data.get("ledger_source") or f"import:{Path(upload.name).name}"
            try:
                data["ledger_source"] = require_source(source)
            except ProgressionError as exc:
                self.add_error(
                    "ledger_source",
                    gettext("Not a ledger source: %(error)s") % {"error": exc},
                )
        return data


class SourceImportForm(forms.Form):
    dry_run = forms.BooleanField(
        label=_("dry run"),
        required=False,
        help_text=_("Read the source and report what an import would do; write nothing."),
    )
    skip_invalid = forms.BooleanField(
        label=_("skip invalid rows"),
        required=False,
        help_text=_(
            "Leave invalid rows (and the rows that depend on them) out and import the rest;"
            " the report lists them. Without it, one invalid row stops the import."
        ),
    )
