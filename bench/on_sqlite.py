"""The same check on SQLite (the project's default database): correct, and how fast.

Import after ``django.setup()``.
"""

from pathlib import Path

from . import data, measure
from .phases import STARTUP, check_run, median


def sqlite(*, n: int, rounds: int, env: dict, path: Path) -> dict:
    """Correct counts and the time of check_sync on SQLite; a timed-out check is not repeated."""
    layout = data.SCALE
    data.build_sqlite(path, n, layout, env)
    sqlite_env = {**env, "DATABASE_URL": f"sqlite:///{path}"}
    expected = layout.expected(n)
    problems: list[str] = []
    checks, startups = [], []
    for _ in range(rounds + 1):
        checks.append(check_run(sqlite_env, expected, problems, f"sqlite n={n}"))
        run = measure.run_process(STARTUP, sqlite_env)
        startups.append({"wall_s": run.wall_s, "rss_mb": run.max_rss_mb})
        if problems:
            break
    if len(checks) > 1:
        checks, startups = checks[1:], startups[1:]  # the first round warms the page cache
    path.unlink(missing_ok=True)
    wall = median([c["wall_s"] for c in checks])
    startup = median([s["wall_s"] for s in startups])
    return {
        "n": n,
        "check_wall_s": wall,
        "startup_wall_s": startup,
        "check_own_s": wall - startup,
        "check_duration_ms": median([c["duration_ms"] or 0 for c in checks]),
        "rss_mb": max(c["rss_mb"] for c in checks),
        "correct": not problems,
        "problems": sorted(set(problems)),
    }
