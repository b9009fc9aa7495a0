from django.conf import settings
from django.contrib import admin
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class UserLicense(models.Model):
    """The credential a student holds in one specialization; must match the progress level."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="licenses",
        verbose_name=_("user"),
    )
    specialization = models.ForeignKey(
        "specializations.Specialization",
        on_delete=models.PROTECT,
        related_name="licenses",
        verbose_name=_("specialization"),
    )
    current_level = models.PositiveSmallIntegerField(_("current level"), default=1)
    max_achieved_level = models.PositiveSmallIntegerField(_("highest level reached"), default=1)
    # db_default: even a raw INSERT that forgets it gets a start date.
    started_at = models.DateTimeField(_("started at"), db_default=Now())
    last_advanced_at = models.DateTimeField(_("last advanced at"), null=True, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("licence")
        verbose_name_plural = _("licences")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "specialization"], name="license_unique_user_specialization"
            ),
            models.CheckConstraint(condition=Q(current_level__gte=1), name="license_level_gte_1"),
            models.CheckConstraint(
                condition=Q(max_achieved_level__gte=F("current_level")),
                name="license_max_level_gte_current",
            ),
        ]
        indexes = [
            models.Index(
                fields=["user", "specialization"],
                include=["current_level"],
                name="license_sync_cover_idx",
            ),
        ]

    def __str__(self) -> str:
        # The admin's titles, breadcrumbs and delete confirmations show it: translated.
        return gettext("%(user)s/%(specialization)s licence L%(level)s") % {
            "user": self.user_id,
            "specialization": self.specialization_id,
            "level": self.current_level,
        }


class LicenseProgression(models.Model):
    """Audit history of a licence's level. PROTECT: deleting a licence never erases it."""

    license = models.ForeignKey(
        UserLicense,
        on_delete=models.PROTECT,
        related_name="progressions",
        verbose_name=_("licence"),
    )
    from_level = models.PositiveSmallIntegerField(
        _("from level"),
        null=True,
        blank=True,
        help_text=_("Empty when the licence was created by this change."),
    )
    to_level = models.PositiveSmallIntegerField(_("to level"))
    advanced_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("changed by"),
        help_text=_("Empty means the system."),
    )
    reason = models.CharField(_("reason"), max_length=255)
    created_at = models.DateTimeField(_("created at"), db_default=Now(), db_index=True)

    class Meta:
        verbose_name = _("licence history entry")
        verbose_name_plural = _("licence history")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(to_level__gte=1), name="progression_to_level_gte_1"),
            models.CheckConstraint(
                condition=Q(from_level__isnull=True) | Q(from_level__gte=1),
                name="progression_from_level_gte_1",
            ),
        ]

    def __str__(self) -> str:
        return gettext("licence %(licence)s: %(from)s -> %(to)s") % {
            "licence": self.license_id,
            "from": "-" if self.from_level is None else self.from_level,
            "to": self.to_level,
        }

    @property
    @admin.display(description=_("changed by"))
    def actor(self) -> str:
        return self.advanced_by.get_username() if self.advanced_by_id else gettext("system")
