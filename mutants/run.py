"""`make mutants`: apply each realistic bug of mutants/catalogue.py, see whether the suite notices.

Each mutant runs in a copy of the working tree (this one is never touched),
against the fast part of the suite, stopping at the first failure. A mutant
is *killed* when a test fails, *survives* when every test passes; either way
the result says which test, and the score goes to docs/MUTANTS.md.

MUTANTS_DATABASE_URL (default: the local PostgreSQL's `mutants` database,
created when missing) serves the mutants that only PostgreSQL can show;
the others run on SQLite. MUTANTS_ONLY=id,id runs a few.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mutants.catalogue import MUTANTS, Mutant  # noqa: E402

IGNORED = shutil.ignore_patterns(
    ".venv", ".git", "__pycache__", "*.pyc", "results", "artifacts", "db.sqlite3", "staticfiles"
)
# The slow process-level files (browsers, servers, clusters) add minutes to every
# mutant; a mutant that only they can catch names them in its ``tests``.
DESELECT = [
    "tests/test_browser.py",
    "tests/test_production.py",
    "tests/test_prometheus.py",
    "tests/test_replica.py",
]
PG_URL = os.environ.get("MUTANTS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/mutants")
# Seconds before a run counts as hung: the fast suite takes about two minutes on
# PostgreSQL, a mutant's own test files a few seconds.
HANG_LIMIT = {"suite": 420, "named tests": 120}
FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.MULTILINE)


def apply(mutant: Mutant, tree: Path) -> None:
    path = tree / mutant.path
    text = path.read_text()
    count = text.count(mutant.old)
    if count != 1:
        raise SystemExit(f"{mutant.id}: {mutant.path} holds its snippet {count} times, not once")
    path.write_text(text.replace(mutant.old, mutant.new))


def run(mutant: Mutant, tree: Path) -> tuple[str, str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree), "CI": os.environ.get("CI", "")}
    env["DATABASE_URL"] = PG_URL if mutant.postgres else f"sqlite:///{tree}/mutant.sqlite3"
    args = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-rfE"]
    if not mutant.tests:  # a mutant that names its tests gets exactly those
        args += [f"--deselect={path}" for path in DESELECT]
    limit = HANG_LIMIT["named tests" if mutant.tests else "suite"]
    started = time.monotonic()
    try:
        result = subprocess.run(
            [*args, *mutant.tests], cwd=tree, env=env, capture_output=True, text=True, timeout=limit
        )
    except subprocess.TimeoutExpired:  # a mutant that makes a test hang is caught, slowly
        return "killed", f"(a test hung: stopped after {limit} s)", time.monotonic() - started
    elapsed = time.monotonic() - started
    if result.returncode == 0:
        return "survived", "", elapsed
    if result.returncode == 1:
        failed = FAILED.findall(result.stdout)
        return "killed", failed[0] if failed else "(a test failed)", elapsed
    return "error", result.stdout[-400:] + result.stderr[-400:], elapsed


def ensure_database() -> None:
    import psycopg2

    name = PG_URL.rsplit("/", 1)[1]
    conn = psycopg2.connect(PG_URL.rsplit("/", 1)[0] + "/postgres")
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def report(results: list[tuple[Mutant, str, str, float]]) -> str:
    killed = sum(1 for _, outcome, _, _ in results if outcome == "killed")
    equivalent = [m for m, outcome, _, _ in results if outcome == "survived" and m.equivalent]
    survived = [m for m, outcome, _, _ in results if outcome == "survived" and not m.equivalent]
    errors = [m for m, outcome, _, _ in results if outcome == "error"]
    scored = len(results) - len(equivalent)
    lines = [
        "# Mutation score",
        "",
        "Written by `make mutants` (mutants/run.py over mutants/catalogue.py): each mutant is",
        "a realistic bug applied to a copy of the tree, then the fast suite (without the",
        "browser, production and replica files) runs until its first failure.",
        "",
        f"**{killed} of {scored} killed ({100 * killed / scored:.0f} %)**;"
        f" {len(equivalent)} equivalent (explained below, not scored);"
        f" {len(survived)} survived; {len(errors)} errors.",
        "",
        "| mutant | file | the bug | outcome | first failing test |",
        "|---|---|---|---|---|",
    ]
    for m, outcome, detail, _ in results:
        shown = detail if outcome == "killed" else ("" if outcome == "survived" else "see log")
        lines.append(f"| `{m.id}` | `{m.path}` | {m.why} | {outcome} | {shown} |")
    if equivalent or survived:
        lines += ["", "## Survivors", ""]
        for m in equivalent:
            lines.append(f"- `{m.id}` (equivalent): {m.equivalent}")
        for m in survived:
            lines.append(f"- `{m.id}`: not caught yet, needs a test")
    return "\n".join(lines) + "\n"


def main() -> int:
    only = {m for m in os.environ.get("MUTANTS_ONLY", "").split(",") if m}
    chosen = [m for m in MUTANTS if not only or m.id in only]
    if any(m.postgres for m in chosen):
        ensure_database()
    results = []
    with tempfile.TemporaryDirectory(prefix="mutants-") as scratch:
        for number, mutant in enumerate(chosen, start=1):
            tree = Path(scratch) / mutant.id
            shutil.copytree(ROOT, tree, ignore=IGNORED)
            # The units' ExecStart lines (gunicorn, db_worker) run from the checkout's .venv.
            (tree / ".venv").symlink_to(ROOT / ".venv")
            apply(mutant, tree)
            outcome, detail, elapsed = run(mutant, tree)
            shutil.rmtree(tree)
            results.append((mutant, outcome, detail, elapsed))
            print(f"[{number}/{len(chosen)}] {mutant.id}: {outcome} in {elapsed:.0f} s {detail}")
    if not only:
        (ROOT / "docs" / "MUTANTS.md").write_text(report(results))
        print(f"wrote {ROOT / 'docs' / 'MUTANTS.md'}")
    return 1 if any(outcome == "error" for _, outcome, _, _ in results) else 0


if __name__ == "__main__":
    sys.exit(main())
