from django.db import models
from django.db.models.functions import Now


class ImportedRow(models.Model):
    """A source row this product imported: the row it became and a digest of what it held.

    A rerun compares each source row's digest with the one stored here, so it
    updates only what changed at the source and leaves local repairs alone.
    """

    source = models.CharField(max_length=50)
    table = models.CharField(max_length=50)
    source_id = models.BigIntegerField()
    target_id = models.BigIntegerField()
    digest = models.CharField(max_length=32)
    imported_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["source", "table", "source_id"], name="imported_row_unique_source_row"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.table} {self.source_id} -> {self.target_id}"
