"""A real database of the replaced system, built from imports/source_schema.sql.

``SourceDb`` creates its own database on the PostgreSQL server the tests use
(TEST_DATABASE_URL, or the default database's server), fills it through plain
SQL as the replaced system would have, and drops it afterwards. The import only
reads it. The SQLite half of the suite uses the same server when one is reachable.
"""

import os
import uuid
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg2
import pytest
from django.db import connection

from specializations.models import Level, Specialization

SCHEMA = Path(__file__).resolve().parent.parent / "imports" / "source_schema.sql"


def server_url() -> str | None:
    """A PostgreSQL server to build source databases on, or None."""
    url = os.environ.get("TEST_DATABASE_URL")
    if not url and connection.vendor == "postgresql":
        s = connection.settings_dict
        url = f"postgresql://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT'] or 5432}/postgres"
    if not url:
        return None
    try:
        psycopg2.connect(url, connect_timeout=3).close()
    except psycopg2.Error:
        return None
    return url


class SourceDb:
    def __init__(self, server: str):
        self.server = server
        self.name = f"source_{uuid.uuid4().hex[:12]}"
        parts = urlsplit(server)
        self.url = parts._replace(path=f"/{self.name}").geturl()

    def create(self) -> "SourceDb":
        self._admin(f"CREATE DATABASE {self.name}")
        self.execute(SCHEMA.read_text())
        return self

    def drop(self) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")

    def _admin(self, sql: str) -> None:
        admin = psycopg2.connect(self.server)
        admin.autocommit = True
        try:
            with admin.cursor() as cursor:
                cursor.execute(sql)
        finally:
            admin.close()

    def execute(self, sql: str, params=None) -> None:
        with psycopg2.connect(self.url) as conn, conn.cursor() as cursor:
            cursor.execute(sql, params)
        conn.close()

    def fetch(self, sql: str, params=None) -> list[tuple]:
        with psycopg2.connect(self.url) as conn, conn.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        conn.close()
        return rows

    # The replaced system's rows, with its NOT NULL columns given their app defaults.

    def user(
        self,
        id,
        email,
        *,
        role="STUDENT",
        name=None,
        first_name=None,
        last_name=None,
        is_active=True,
    ):
        self.execute(
            "INSERT INTO users (id, name, first_name, last_name, email, password_hash, role,"
            " is_active, payment_verified, credit_balance, credit_purchased, xp_balance,"
            " manual_review_required, nda_accepted, parental_consent, created_at)"
            " VALUES (%s, %s, %s, %s, %s, 'bcrypt$not-imported', %s, %s, false, 0, 0, 0,"
            " false, false, false, %s)",
            [
                id,
                name or f"{first_name} {last_name}",
                first_name,
                last_name,
                email,
                role,
                is_active,
                datetime(2024, 1, 1, 9, 0),
            ],
        )

    def specialization(self, code):
        self.execute(
            "INSERT INTO specializations (id, is_active, created_at) VALUES (%s, true, %s)",
            [code, datetime(2023, 1, 1)],
        )

    def progress(
        self, id, student_id, code, *, level=1, xp=0, sessions=0, projects=0, theory=0, practice=0
    ):
        self.execute(
            "INSERT INTO specialization_progress (id, student_id, specialization_id,"
            " current_level, total_xp, completed_sessions, completed_projects,"
            " theory_hours_completed, practice_hours_completed, last_activity, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                id,
                student_id,
                code,
                level,
                xp,
                sessions,
                projects,
                theory,
                practice,
                datetime(2025, 3, 1, 12, 0),
                datetime(2024, 2, 1),
            ],
        )

    def licence(
        self,
        id,
        user_id,
        code,
        *,
        level=1,
        max_level=None,
        is_active=True,
        started_at=datetime(2024, 2, 1, 10, 0),
    ):
        self.execute(
            "INSERT INTO user_licenses (id, user_id, specialization_type, current_level,"
            " max_achieved_level, started_at, last_advanced_at, payment_verified,"
            " onboarding_completed, is_active, renewal_cost, credit_balance, credit_purchased)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, false, true, %s, 0, 0, 0)",
            [
                id,
                user_id,
                code,
                level,
                max_level or level,
                started_at,
                datetime(2025, 1, 1) if level > 1 else None,
                is_active,
            ],
        )

    def history(
        self,
        id,
        licence_id,
        from_level,
        to_level,
        *,
        by=None,
        reason=None,
        at=datetime(2024, 6, 1, 8, 30),
    ):
        self.execute(
            "INSERT INTO license_progressions (id, user_license_id, from_level, to_level,"
            " advanced_by, advancement_reason, advanced_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [id, licence_id, from_level, to_level, by, reason, at],
        )


def fill_academy(source: SourceDb) -> None:
    """The standard data set; its hand count is ACADEMY below."""
    for code in ("GANCUJU_PLAYER", "LFA_COACH", "INTERNSHIP"):
        source.specialization(code)
    source.user(
        1, "admin@academy.test", role="ADMIN", first_name="Árvíztűrő", last_name="Tükörfúrógép"
    )
    source.user(
        2, "director@academy.test", role="SPORT_DIRECTOR", first_name="Zsófia", last_name="Kőszegi"
    )
    source.user(3, "oktato@academy.test", role="INSTRUCTOR", name="Kovács Éva")  # no first/last
    source.user(4, "anna@academy.test", first_name="Anna", last_name="Szűcs")
    source.user(5, "bela@academy.test", first_name="Béla", last_name="Öreg")
    source.user(6, "cecil@academy.test", first_name="Cecil", last_name="Ürge")
    source.user(7, "dora@academy.test", first_name="Dóra", last_name="Nagy", is_active=False)
    source.user(8, "ede@academy.test", first_name="Ede", last_name="Kiss", is_active=None)
    source.user(9, "feri@academy.test", first_name="Feri", last_name="Tóth")  # no rows: orphan
    # Anna: in sync twice; LFA_COACH with a NULL level computed from 2,500 XP (level 3).
    source.progress(1, 4, "GANCUJU_PLAYER", level=2, xp=1500, sessions=5)
    source.licence(1, 4, "GANCUJU_PLAYER", level=2)
    source.progress(2, 4, "LFA_COACH", level=None, xp=2500)
    source.licence(2, 4, "LFA_COACH", level=3)
    # Béla: level mismatch (progress 3, licence 2).
    source.progress(3, 5, "GANCUJU_PLAYER", level=3, xp=3200)
    source.licence(3, 5, "GANCUJU_PLAYER", level=2, max_level=2)
    # Cecil: NULL totals and NULL level (level 1), no licence: missing licence.
    source.execute(
        "INSERT INTO specialization_progress (id, student_id, specialization_id) VALUES"
        " (4, 6, 'GANCUJU_PLAYER')"
    )
    # Dóra: a licence without progress: missing progress.
    source.licence(4, 7, "LFA_COACH", level=4, is_active=False)
    # Ede: in sync at level 1.
    source.progress(5, 8, "INTERNSHIP", level=1)
    source.licence(5, 8, "INTERNSHIP", level=1)
    source.history(1, 1, 0, 1, reason="Licenc kiadva")
    source.history(2, 1, 1, 2, by=3, reason="Vizsga: sikeres\nsecond line")
    source.history(3, 3, 0, 1)
    source.history(4, 3, 1, 2, by=2, reason="Előléptetés")
    source.history(5, 4, 0, 4, by=1, at=None)


ACADEMY = {
    "found": {
        "users": 9,
        "specialization_progress": 5,
        "user_licenses": 5,
        "license_progressions": 5,
    },
    "pairs": 6,
    "desyncs": {"level_mismatch": 1, "missing_license": 1, "missing_progress": 1},
}


@pytest.fixture(scope="session")
def _source_database():
    """One source database per test session (its schema only), dropped at the end."""
    server = server_url()
    if server is None:
        pytest.skip("no PostgreSQL server for the source database (set TEST_DATABASE_URL)")
    source = SourceDb(server).create()
    yield source
    source.drop()


@pytest.fixture
def source_db(_source_database):
    """The source database, emptied for this test."""
    _source_database.execute(
        "TRUNCATE users, specializations, specialization_progress, user_licenses,"
        " license_progressions, xp_transactions RESTART IDENTITY CASCADE"
    )
    return _source_database


@pytest.fixture
def source(source_db):
    fill_academy(source_db)
    return source_db


@pytest.fixture
def academy_catalogue(db):
    """GANCUJU_PLAYER and LFA_COACH: level k at (k - 1) * 1,000 XP, nothing else required."""
    for code in ("GANCUJU_PLAYER", "LFA_COACH"):
        spec = Specialization.objects.create(code=code, name=code.title(), max_level=8)
        Level.objects.bulk_create(
            Level(
                specialization=spec,
                number=k,
                name=f"L{k}",
                required_xp=(k - 1) * 1000,
                required_sessions=0,
                license_title=f"{code} {k}",
            )
            for k in range(1, 9)
        )
