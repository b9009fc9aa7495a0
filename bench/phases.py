"""The PostgreSQL phases: scale of the check, rare desyncs, contention, repair.

Each returns a plain dict of figures (written to bench/results/ as JSON).
Import after ``django.setup()``.
"""

import json
import os
import statistics

from django.db import connection, transaction

from licenses import consistency
from licenses.guard import unguarded
from licenses.models import LicenseProgression

from . import data, load, measure

CHECK = ["check_sync", "--no-record", "--json"]
STARTUP = ["check_sync", "--help"]


def median(values: list[float]) -> float:
    return statistics.median(values)


def _fill(n: int, layout: data.Layout, admin_url: str) -> None:
    with unguarded(), connection.cursor() as cursor:  # its desyncs, on purpose
        data.fill_postgres(cursor, n, layout)
    data.vacuum_analyze(admin_url)


def check_run(env: dict, expected: dict, problems: list[str], label: str) -> dict:
    run = measure.run_process(CHECK, env)
    if run.returncode not in (0, 1, 2):
        problems.append(f"{label}: check_sync exited {run.returncode}: {run.stderr[-300:]}")
        return {"wall_s": run.wall_s, "rss_mb": run.max_rss_mb, "duration_ms": None}
    counts = measure.report_counts(run)
    if counts != expected:
        problems.append(f"{label}: check_sync counts {counts} != expected {expected}")
    report = json.loads(run.stdout)
    return {"wall_s": run.wall_s, "rss_mb": run.max_rss_mb, "duration_ms": report["duration_ms"]}


def scale(n: int, *, rounds: int, sample: int, env: dict, admin_url: str) -> dict:
    """check_sync as a whole process against its parts and the replaced pair-by-pair check."""
    layout = data.SCALE
    _fill(n, layout, admin_url)
    expected = layout.expected(n)
    problems: list[str] = []
    plans = {"default": measure.explain(best=False), "best": measure.explain(best=True)}
    best_plan_ok = (
        "Merge Full Join" in plans["best"]
        and plans["best"].count("Index Only Scan using") == 2
        and "progress_sync_cover_idx" in plans["best"]
        and "license_sync_cover_idx" in plans["best"]
    )
    if not best_plan_ok:
        problems.append("best plan is not a merge full join over the two covering indexes")
    indices = measure.sample_indices(n, sample)

    def check():
        return check_run(env, expected, problems, f"n={n}")

    def startup():
        run = measure.run_process(STARTUP, env)
        return {"wall_s": run.wall_s, "rss_mb": run.max_rss_mb}

    def count(fn, label):
        seconds, counts = fn()
        if counts != expected:
            problems.append(f"n={n}: {label} counts {counts} != expected {expected}")
        return {"wall_s": seconds}

    def pairwise():
        per_pair, wrong = measure.pair_by_pair(indices, layout)
        if wrong:
            problems.append(f"n={n}: pair-by-pair misclassified {wrong} sampled pairs")
        return {"per_pair_s": per_pair, "wall_s": per_pair * n}

    steps = {
        "check": check,
        "startup": startup,
        "default_plan": lambda: count(measure.default_plan_count, "default plan"),
        "best_plan": lambda: count(measure.best_plan_count, "best plan"),
        "pair_by_pair": pairwise,
    }
    for step in steps.values():  # warm-up: caches, catalogue, bytecode; not recorded
        step()
    samples = {name: [] for name in steps}
    names = list(steps)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # rotate the order
            samples[name].append(steps[name]())

    def med(name, key):
        values = [s[key] for s in samples[name] if s.get(key) is not None]
        return median(values) if values else None

    figures = {
        "n": n,
        "expected": expected,
        "check_wall_s": med("check", "wall_s"),
        "check_rss_mb": max(s["rss_mb"] for s in samples["check"]),
        "check_duration_ms": med("check", "duration_ms"),
        "startup_wall_s": med("startup", "wall_s"),
        "startup_rss_mb": max(s["rss_mb"] for s in samples["startup"]),
        "default_plan_s": med("default_plan", "wall_s"),
        "best_plan_s": med("best_plan", "wall_s"),
        "pair_by_pair_per_pair_ms": med("pair_by_pair", "per_pair_s") * 1000,
        "pair_by_pair_sample": len(indices),
        "pair_by_pair_extrapolated_s": med("pair_by_pair", "wall_s"),
        "rounds": rounds,
        "raw": samples,
        "plans": plans,
        "best_plan_ok": best_plan_ok,
        "problems": problems,
    }
    figures["check_own_s"] = figures["check_wall_s"] - figures["startup_wall_s"]
    figures["own_over_best"] = figures["check_own_s"] / figures["best_plan_s"]
    figures["default_over_best"] = figures["default_plan_s"] / figures["best_plan_s"]
    figures["speedup_vs_pair_by_pair"] = (
        figures["pair_by_pair_extrapolated_s"] / figures["check_wall_s"]
    )
    return figures


def rare(n: int, *, rounds: int, env: dict, admin_url: str, keep_every: int = 701) -> dict:
    """The check when desyncs are rare: on scale()'s data, resync all but a few pairs.

    Only pairs of users whose id is a multiple of ``keep_every`` stay out of sync.
    A sample that stops at the first violations it meets must now read
    (nearly) every pair to find them.
    """
    layout = data.SCALE
    kept = [
        i
        for slot in (layout.missing_license, layout.missing_progress, layout.level_mismatch)
        for i in range(slot, n, layout.period)
        if data.pair(i)[0] % keep_every == 0
    ]
    by_kind = {kind: 0 for kind in consistency.VIOLATION_KINDS}
    for i in kept:
        by_kind[layout.kind_of(i)] += 1
    expected = {"total": n, "inconsistent": len(kept), "by_kind": by_kind}
    keep = f"% {keep_every} <> 0"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {data.LICENSE} l SET current_level = p.current_level,"
            " max_achieved_level = GREATEST(l.max_achieved_level, p.current_level)"
            f" FROM {data.PROGRESS} p WHERE p.student_id = l.user_id"
            " AND p.specialization_id = l.specialization_id"
            f" AND p.current_level <> l.current_level AND l.user_id {keep}"
        )
        cursor.execute(
            f"INSERT INTO {data.LICENSE} (user_id, specialization_id, current_level,"
            " max_achieved_level, is_active)"
            " SELECT p.student_id, p.specialization_id, p.current_level, p.current_level, true"
            f" FROM {data.PROGRESS} p WHERE p.student_id {keep} AND NOT EXISTS (SELECT 1"
            f" FROM {data.LICENSE} l WHERE l.user_id = p.student_id"
            " AND l.specialization_id = p.specialization_id)"
        )
        cursor.execute(
            f"INSERT INTO {data.PROGRESS} (student_id, specialization_id, current_level,"
            " total_xp, completed_sessions, completed_projects, theory_hours_completed,"
            " practice_hours_completed)"
            " SELECT l.user_id, l.specialization_id, l.current_level, 0, 0, 0, 0, 0"
            f" FROM {data.LICENSE} l WHERE l.user_id {keep} AND NOT EXISTS (SELECT 1"
            f" FROM {data.PROGRESS} p WHERE p.student_id = l.user_id"
            " AND p.specialization_id = l.specialization_id)"
        )
    data.vacuum_analyze(admin_url)
    problems: list[str] = []
    checks, startups, best = [], [], []
    for _ in range(rounds + 1):
        checks.append(check_run(env, expected, problems, f"rare n={n}"))
        startups.append(measure.run_process(STARTUP, env).wall_s)
        seconds, counts = measure.best_plan_count()
        if counts != expected:
            problems.append(f"rare n={n}: best plan counts {counts} != expected {expected}")
        best.append(seconds)
    checks, startups, best = checks[1:], startups[1:], best[1:]  # first round: warm-up
    wall = median([c["wall_s"] for c in checks])
    own = wall - median(startups)
    return {
        "n": n,
        "desyncs": len(kept),
        "check_wall_s": wall,
        "check_own_s": own,
        "check_duration_ms": median([c["duration_ms"] or 0 for c in checks]),
        "best_plan_s": median(best),
        "own_over_best": own / median(best),
        "rss_mb": max(c["rss_mb"] for c in checks),
        "problems": sorted(set(problems)),
    }


def contention(*, seconds: float, workers: tuple[int, ...], admin_url: str) -> list[dict]:
    """update_progress from many workers on the same 100 students (all starting at level 1).

    BENCH_WORKERS: "processes" (default), "threads", or "both" (each size twice).
    """
    _fill(30_000, data.CLEAN, admin_url)
    with transaction.atomic(), connection.cursor() as cursor:  # both sides, one commit
        cursor.execute(f"UPDATE {data.PROGRESS} SET current_level = 1 WHERE student_id <= 100")
        cursor.execute(f"UPDATE {data.LICENSE} SET current_level = 1 WHERE user_id <= 100")
    setting = os.environ.get("BENCH_WORKERS", "processes")
    kinds = ("processes", "threads") if setting == "both" else (setting,)
    return [
        load.contention(workers=count, seconds=seconds, kind=kind)
        for kind in kinds
        for count in workers
    ]


def repair(*, n: int, env: dict, admin_url: str, startup_s: float) -> dict:
    """check_sync --repair on n pairs with 10% desyncs; everything must be in sync afterwards,
    every pair counted once by the run."""
    layout = data.REPAIR
    _fill(n, layout, admin_url)
    expected = layout.expected(n)
    with connection.cursor() as cursor:
        # Audit rows repair must write: every licence created or raised.
        cursor.execute(
            f"SELECT COUNT(*) FROM {data.PROGRESS} p JOIN {data.LICENSE} l"
            " ON l.user_id = p.student_id AND l.specialization_id = p.specialization_id"
            " WHERE l.current_level < p.current_level"
        )
        expected_audit = cursor.fetchone()[0] + expected["by_kind"]["missing_license"]
    # No time limit: the figure is the whole repair. Always recorded (its run is its claim).
    run = measure.run_process(["check_sync", "--repair", "--timeout", "0", "--json"], env)
    problems = []
    report = {}
    if run.returncode not in (0, 1, 2):
        problems.append(f"repair exited {run.returncode}: {run.stderr[-300:]}")
    else:
        report = json.loads(run.stdout)
    after = consistency.count_pairs()
    audit_rows = LicenseProgression.objects.count()
    with connection.cursor() as cursor:
        # Every pair must end at the higher of its two generated levels, on both sides.
        lic = data._license_level(layout)
        cursor.execute(
            data._pairs_cte(n, layout) + " SELECT COUNT(*) FROM pairs"
            f" LEFT JOIN {data.PROGRESS} p"
            " ON p.student_id = pairs.user_id AND p.specialization_id = spec"
            f" LEFT JOIN {data.LICENSE} l"
            " ON l.user_id = pairs.user_id AND l.specialization_id = spec"
            f" WHERE p.current_level IS DISTINCT FROM GREATEST(level, {lic})"
            f" OR l.current_level IS DISTINCT FROM GREATEST(level, {lic})"
        )
        wrong_levels = cursor.fetchone()[0]
    if after.inconsistent:
        problems.append(f"{after.inconsistent} desyncs left after repair")
    if after.total != n:
        problems.append(f"{after.total} pairs after repair, expected {n}")
    if wrong_levels:
        problems.append(f"{wrong_levels} pairs not at the higher of their two levels")
    if audit_rows != expected_audit:
        problems.append(f"{audit_rows} audit rows, expected {expected_audit}")
    repaired = report.get("repair", {}).get("repaired")
    if repaired != expected["inconsistent"]:
        problems.append(f"repair reports {repaired} repaired, expected {expected['inconsistent']}")
    from monitoring.models import HealthCheckRun

    recorded = HealthCheckRun.objects.filter(kind="repair").order_by("-id").first()
    if recorded is None or (recorded.state, recorded.repaired) != (
        "done",
        expected["inconsistent"],
    ):
        problems.append(f"recorded run {recorded and (recorded.state, recorded.repaired)}")
    desyncs = expected["inconsistent"]
    return {
        "n": n,
        "desyncs": desyncs,
        "wall_s": run.wall_s,
        "rss_mb": run.max_rss_mb,
        "repair_duration_ms": report.get("repair", {}).get("duration_ms"),
        "pairs_per_s": desyncs / run.wall_s,
        "pairs_per_s_without_startup": desyncs / (run.wall_s - startup_s),
        "pairs_per_s_repair_only": (
            desyncs / (report["repair"]["duration_ms"] / 1000) if report.get("repair") else None
        ),
        "desyncs_after": after.inconsistent,
        "audit_rows": audit_rows,
        "expected_audit_rows": expected_audit,
        "problems": problems,
    }
