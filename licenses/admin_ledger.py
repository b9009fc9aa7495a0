"""The ledger on a progress row's admin page: its events, and corrections entered as events.

The totals are read-only: staff change them by entering a correction (amounts,
negative to take away, and a reason), which goes through ``update_progress``
with source "admin" and the staff user as actor, under an idempotency key the
form carries, so a form sent twice applies once. The events are listed newest
first, numbered pages first, then pages keyed by the last event id shown.
"""

import uuid

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import HttpResponseBadRequest, HttpResponseRedirect
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from common.admin_lists import ListParameterError, check_text
from specializations.exceptions import NegativeAmount, ProgressionError
from specializations.models import LEDGER_FIELDS, ProgressEvent
from specializations.services import ADMIN_SOURCE, update_progress

EVENTS_PER_PAGE = 20
NUMBERED_PAGES = 5  # then pages keyed by event id: no OFFSET deep into a long ledger
PAGE_PARAMETER, BEFORE_PARAMETER = "events_page", "events_before"
CORRECTION_REASON_REQUIRED = _("Say why the totals are corrected: it is recorded in the ledger.")
CORRECTION_REFUSED = _("Nothing was changed: %(error)s")
CORRECTION_FIELDS = [f"correct_{amount}" for amount, _ in LEDGER_FIELDS]
TOTAL_FIELDS = [total for _, total in LEDGER_FIELDS]


class CorrectionFormMixin(forms.Form):
    """Correction amounts (one per total, negative to take away) and the form's own key.

    Mixed into the progress row's ModelForm; its ``clean`` calls ``clean_correction``.
    """

    correct_xp_gained = forms.IntegerField(required=False, label=_("Correct XP by"))
    correct_sessions_completed = forms.IntegerField(required=False, label=_("Correct sessions by"))
    correct_projects_completed = forms.IntegerField(required=False, label=_("Correct projects by"))
    correct_theory_hours = forms.IntegerField(required=False, label=_("Correct theory hours by"))
    correct_practice_hours = forms.IntegerField(
        required=False, label=_("Correct practice hours by")
    )
    correction_key = forms.CharField(widget=forms.HiddenInput, required=False, max_length=64)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["correction_key"].initial = uuid.uuid4().hex
        for name in CORRECTION_FIELDS:
            self.fields[name].help_text = _("Recorded as a ledger event; negative takes away.")

    def correction(self) -> dict[str, int]:
        """The amounts entered, by update_progress keyword (none: no correction)."""
        amounts = {
            amount: self.cleaned_data.get(f"correct_{amount}") or 0 for amount, _ in LEDGER_FIELDS
        }
        return amounts if any(amounts.values()) else {}

    def clean_correction(self, cleaned) -> None:
        """Reason required; a total taken below 0 refused here, as the service would."""
        amounts = self.correction()
        if not amounts or not self.instance.pk:
            return
        if not (cleaned.get("reason") or "").strip():
            self.add_error("reason", CORRECTION_REASON_REQUIRED)
        for amount, total in LEDGER_FIELDS:
            result = getattr(self.instance, total) + amounts[amount]
            if result < 0:
                self.add_error(
                    f"correct_{amount}", str(NegativeAmount(amount, amounts[amount], total=result))
                )


class LedgerAdminMixin:
    """For SpecializationProgressAdmin: totals read-only, corrections, the events list."""

    change_form_template = "admin/licenses/progress_change_form.html"

    def get_readonly_fields(self, request, obj=None):
        # The totals move only through the ledger (update_progress).
        return [*super().get_readonly_fields(request, obj), *TOTAL_FIELDS, "last_activity"]

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if obj is None:  # a new row starts at zero: nothing to correct
            return [name for name in fields if name not in (*CORRECTION_FIELDS, "correction_key")]
        return fields

    def save_model(self, request, obj, form, change):
        # The level first (update_level_atomic locks progress, then the licence), then the
        # correction, on the row already locked: one transaction (the admin's own).
        result = super().save_model(request, obj, form, change)
        amounts = form.correction() if change else {}
        if amounts:
            update_progress(
                obj.student,
                obj.specialization_id,
                **amounts,
                source=ADMIN_SOURCE,
                actor=request.user,
                reason=form.cleaned_data["reason"],
                idempotency_key=f"admin-form-{form.cleaned_data['correction_key']}",
            )
            obj.refresh_from_db()
        return result

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = extra_context or {}
        if object_id is not None and object_id.isascii() and object_id.isdigit():
            try:
                extra_context["ledger"] = self.ledger_page(request, int(object_id))
            except ListParameterError as exc:  # plain text: it repeats what was sent
                return HttpResponseBadRequest(str(exc), content_type="text/plain; charset=utf-8")
        try:
            with transaction.atomic():
                return super().changeform_view(request, object_id, form_url, extra_context)
        except ProgressionError as exc:
            # A race the form could not see (the totals moved since it was shown), or a
            # key reused for other amounts: refused as a whole, said on the page.
            self.message_user(request, CORRECTION_REFUSED % {"error": exc}, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def ledger_page(self, request, object_id: int) -> dict:
        """One page of the row's events, newest first, and the links around it."""
        page, before = 1, None
        if (value := request.GET.get(BEFORE_PARAMETER)) is not None:
            before = _positive(BEFORE_PARAMETER, value)
        elif (value := request.GET.get(PAGE_PARAMETER)) is not None:
            page = _positive(PAGE_PARAMETER, value)
            if page > NUMBERED_PAGES:
                why = gettext("pages after %(pages)s are reached with %(parameter)s") % {
                    "pages": NUMBERED_PAGES,
                    "parameter": BEFORE_PARAMETER,
                }
                raise _refused(PAGE_PARAMETER, value, why)
        events = (
            ProgressEvent.objects.filter(progress_id=object_id)
            .select_related("actor")
            .order_by("-id")
        )
        if before is not None:
            rows = list(events.filter(id__lt=before)[: EVENTS_PER_PAGE + 1])
        else:
            start = (page - 1) * EVENTS_PER_PAGE
            rows = list(events[start : start + EVENTS_PER_PAGE + 1])
        older = None
        if len(rows) > EVENTS_PER_PAGE:
            rows = rows[:EVENTS_PER_PAGE]
            if before is None and page < NUMBERED_PAGES:
                older = f"?{PAGE_PARAMETER}={page + 1}"
            else:
                older = f"?{BEFORE_PARAMETER}={rows[-1].pk}"
        count = events.count()  # one row's events: an index-only count
        pages = min(NUMBERED_PAGES, -(-count // EVENTS_PER_PAGE))
        return {
            "events": rows,
            "count": count,
            "page": None if before is not None else page,
            "numbered": range(1, pages + 1) if pages > 1 else (),
            "older": older,
            "keyed": before is not None,
        }


def _positive(name: str, value: str) -> int:
    check_text(name, value)
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) < 2**63:
        raise _refused(name, value[:40], gettext("expected a whole number from 1"))
    return int(value)


def _refused(name: str, value: str, why: str) -> ListParameterError:
    return ListParameterError(
        gettext("Bad query parameter %(name)s=%(value)s: %(why)s.")
        % {"name": repr(name), "value": repr(value), "why": why}
    )
