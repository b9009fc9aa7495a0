from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _

SCOPES = ("events:write", "progress:read", "catalogue:read")
# A client's name is its ledger source: short, and never one of the product's own sources.
NAME_PATTERN = r"^[a-z][a-z0-9_.-]{0,39}$"


class ApiClient(models.Model):
    """A system that talks to the API. Its name is the ledger source of what it sends."""

    name = models.CharField(
        _("name"),
        max_length=40,
        unique=True,
        help_text=_(
            "Lower case, e.g. 'attendance'. The ledger records its events under this name."
        ),
    )
    external_id_source = models.CharField(
        _("external id source"),
        max_length=40,
        blank=True,
        help_text=_(
            "Whose ids it sends as external_id: empty means its own name; "
            "'replaced-system' for the ids the import from the replaced system recorded."
        ),
    )
    scopes = models.JSONField(_("scopes"), default=list, blank=True, help_text=", ".join(SCOPES))
    rate_limit_per_minute = models.PositiveIntegerField(
        _("rate limit per minute"),
        null=True,
        blank=True,
        help_text=_("Empty: API_RATE_LIMIT_PER_MINUTE. 0: no limit."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), db_default=Now())

    class Meta:
        verbose_name = _("API client")
        verbose_name_plural = _("API clients")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(name__regex=NAME_PATTERN), name="api_client_name"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def namespace(self) -> str:
        """The source whose external ids this client sends."""
        return self.external_id_source or self.name


class ApiKey(models.Model):
    """One key of a client: only its visible prefix and a SHA-256 of the whole key are kept."""

    client = models.ForeignKey(
        ApiClient, on_delete=models.CASCADE, related_name="keys", verbose_name=_("client")
    )
    prefix = models.CharField(_("prefix"), max_length=16, unique=True)
    digest = models.CharField(max_length=64)  # hex SHA-256 of the whole key
    created_at = models.DateTimeField(_("created at"), db_default=Now())
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.client_id})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class IdempotentRequest(models.Model):
    """The first answer to an event sent with (client, key): what a retry gets back.

    Written in the transaction that applied the event; ``fingerprint`` is a SHA-256 of
    the event as validated, so a retry with another body is told apart from a replay.
    """

    # Indexed by the unique (client, key) constraint, which every event writes anyway.
    # No database constraint: its check ran once per answer at COMMIT, while the batch's
    # rows were locked (7.6 ms of a 1,000-event batch; BENCHMARKS.md, "The HTTP API").
    # Deleting a client through the ORM still takes its answers along; an answer left by
    # a client deleted behind the ORM's back is never read (ids are not reused).
    client = models.ForeignKey(
        ApiClient, on_delete=models.CASCADE, related_name="+", db_index=False,
        db_constraint=False,
    )  # fmt: skip
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    response = models.JSONField()
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["client", "key"], name="api_idempotent_request_key"),
        ]

    def __str__(self) -> str:
        return f"{self.client_id}:{self.key}"
