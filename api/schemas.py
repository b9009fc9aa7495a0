"""The API's request and response bodies: the OpenAPI schema is generated from these,
with their examples. Plain pydantic models, not ninja.Schema: ninja's Schema wraps every
object in a getter for ORM attributes, which cost a batch of 1,000 events a quarter of
its time; these bodies are plain JSON in and dicts out."""

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    model_validator,
)

from specializations.selectors import MAX_ID

# The most one event may carry of each amount: a larger number is a typo, not an award.
MAX_XP = 1_000_000
MAX_COUNT = 10_000
MAX_KEY_LENGTH = 255
CODE_PATTERN = r"^[A-Z][A-Z0-9_]{0,49}$"
# What a key or an external id may hold: printable ASCII, no spaces.
TOKEN_PATTERN = r"^[\x21-\x7e]+$"

Xp = Annotated[StrictInt, Field(ge=0, le=MAX_XP)]
Count = Annotated[StrictInt, Field(ge=0, le=MAX_COUNT)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventIn(Strict):
    """One award. The student by ``student_id`` (the product's user id) or ``external_id``
    (the id the sending system knows, in the client's namespace): exactly one."""

    student_id: StrictInt | None = Field(None, ge=1, le=MAX_ID)
    external_id: StrictStr | None = Field(None, min_length=1, max_length=100, pattern=TOKEN_PATTERN)
    specialization: StrictStr = Field(pattern=CODE_PATTERN)
    xp: Xp = 0
    sessions: Count = 0
    projects: Count = 0
    theory_hours: Count = 0
    practice_hours: Count = 0
    reason: StrictStr = Field("", max_length=255)
    occurred_at: AwareDatetime | None = Field(
        None, description="When it happened (ISO 8601 with a time zone); default: now."
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "external_id": "src-17",
                    "specialization": "COACH",
                    "xp": 150,
                    "sessions": 1,
                    "practice_hours": 2,
                    "reason": "training session 2026-03-02",
                    "occurred_at": "2026-03-02T17:30:00Z",
                }
            ]
        },
    )

    @model_validator(mode="after")
    def _one_student(self):
        if (self.student_id is None) == (self.external_id is None):
            raise ValueError("give exactly one of student_id and external_id")
        return self


class BatchEventIn(EventIn):
    key: StrictStr = Field(min_length=1, max_length=MAX_KEY_LENGTH, pattern=TOKEN_PATTERN)


class BatchIn(Strict):
    events: list[BatchEventIn] = Field(min_length=1)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "events": [
                        {"key": "quiz-8812", "external_id": "src-17", "specialization": "COACH",
                         "xp": 40, "theory_hours": 1, "reason": "quiz 8812 passed"},
                        {"key": "quiz-8813", "external_id": "src-17", "specialization": "COACH",
                         "xp": 25, "reason": "quiz 8813 passed"},
                    ]
                }
            ]
        },
    )  # fmt: skip


class Totals(BaseModel):
    xp: int
    sessions: int
    projects: int
    theory_hours: int
    practice_hours: int


class EventOut(BaseModel):
    event_id: int
    student_id: int
    external_id: str | None
    specialization: str
    level_before: int
    level_after: int
    levels_gained: int
    totals: Totals = Field(description="The progress totals after this event.")
    licence_level: int | None = Field(
        description="The licence's level after this event; null when the pair has no"
        " licence (a desync: check_sync reports it, repair creates it)."
    )
    occurred_at: datetime


class BatchItemOut(BaseModel):
    index: int
    key: str
    status: Literal["applied", "replayed"]
    event: EventOut


class BatchOut(BaseModel):
    applied: int
    replayed: int
    items: list[BatchItemOut]


class Requirements(BaseModel):
    xp: int
    sessions: int
    projects: int
    theory_hours: int
    practice_hours: int
    total_hours: int


class NextLevel(BaseModel):
    number: int
    name: str
    requires: Requirements
    missing: dict[str, int] = Field(
        description="What the totals still lack, by requirement (only those not met).",
        examples=[{"xp": 350, "sessions": 2}],
    )


class Licence(BaseModel):
    level: int
    highest_level: int
    started_at: datetime
    active: bool


class SpecializationProgressOut(BaseModel):
    specialization: str
    name: str
    level: int
    level_name: str
    max_level: int
    totals: Totals
    licence: Licence | None
    next_level: NextLevel | None = Field(description="None at the top level.")


class StudentProgressOut(BaseModel):
    student_id: int
    external_id: str | None
    specializations: list[SpecializationProgressOut]


class LevelOut(BaseModel):
    number: int
    name: str
    name_en: str = Field(description="The catalogue file's English name; empty when none.")
    requires: Requirements
    unchecked_requirements: dict = Field(
        description="Requirements the catalogue holds but the product does not check"
        " (skills, min_age, mandatory_courses, ...), as the catalogue file gave them.",
        examples=[{"min_age": 16, "skills": ["passing", "first touch"]}],
    )


class CatalogueEntryOut(BaseModel):
    code: str
    name: str
    max_level: int
    active: bool
    levels: list[LevelOut]


class CatalogueOut(BaseModel):
    specializations: list[CatalogueEntryOut]


class FieldError(BaseModel):
    field: str
    value: object | None = None
    message: str
    index: int | None = None


class ProblemOut(BaseModel):
    """RFC 9457 problem details, the body of every error."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None
