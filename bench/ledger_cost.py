"""What ``check_sync --ledger`` adds (issue 23, ``BENCH_PARTS=ledger``).

For each size (BENCH_LEDGER_N, default 100000,1000000 pairs) the progress rows
get BENCH_LEDGER_EVENTS (10) events each, their totals the sum, and one row in
100,000 a total off by one (its sample must come out). Then ``check_sync
--no-record --json`` and the same with ``--ledger`` run as whole processes,
alternating, BENCH_LEDGER_ROUNDS (3) times: the medians, their difference (what
the ledger adds), each process's peak RSS, and the ledger query's plan (EXPLAIN
ANALYZE, BUFFERS) in the check's own scope. Import after ``django.setup()``.
"""

import json
import os
import statistics

from django.db import connection

from licenses.planner import merge_join_scope
from specializations import ledger

from . import data, measure, phases

EVENT = "specializations_progressevent"
CHECK = ["check_sync", "--no-record", "--json", "--timeout", "0"]
MISMATCH_EVERY = 100_000


def fill_ledger(n: int, events_per_row: int, admin_url: str) -> int:
    """n pairs, ``events_per_row`` events per progress row; returns the rows made to differ."""
    phases._fill(n, data.CLEAN, admin_url)
    amounts = {  # event amount -> its SQL, per progress row p
        "xp_gained": "p.id % 1000",
        "sessions_completed": "1",
        "projects_completed": "p.id % 2",
        "theory_hours": "p.id % 3",
        "practice_hours": "p.id % 5",
    }
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        cursor.execute(f"TRUNCATE {EVENT}")
        cursor.execute(
            f"UPDATE {data.PROGRESS} p SET total_xp = {events_per_row} * (p.id % 1000),"
            f" completed_sessions = {events_per_row},"
            f" completed_projects = {events_per_row} * (p.id % 2),"
            f" theory_hours_completed = {events_per_row} * (p.id % 3),"
            f" practice_hours_completed = {events_per_row} * (p.id % 5)"
        )
        cursor.execute(
            f"INSERT INTO {EVENT} (progress_id, source, idempotency_key, reason, actor_id,"
            " occurred_at, recorded_at, level_before, level_after, " + ", ".join(amounts) + ")"
            " SELECT p.id, 'bench', NULL, '', NULL, now(), now(), p.current_level,"
            " p.current_level, " + ", ".join(amounts.values()) + f" FROM {data.PROGRESS} p"
            f" CROSS JOIN generate_series(1, {events_per_row}) ORDER BY p.id"
        )
        # A raw change behind the ledger's back, on a known share of the rows.
        cursor.execute(
            f"UPDATE {data.PROGRESS} SET total_xp = total_xp + 1 WHERE id % {MISMATCH_EVERY} = 0"
        )
        differing = cursor.rowcount
        cursor.execute("SET synchronous_commit = on")
    data.vacuum_analyze(admin_url)
    _vacuum_events(admin_url)
    return differing


def _vacuum_events(admin_url: str) -> None:
    import psycopg2

    conn = psycopg2.connect(admin_url.rsplit("/", 1)[0] + f"/{data.BENCH_DB}")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"VACUUM ANALYZE {EVENT}")
    conn.close()


def explain() -> str:
    relation, params = ledger._relation(None)
    sql = f"SELECT COUNT(*), COUNT(*) FILTER (WHERE {ledger._DIFFERS}) FROM {relation}"
    with merge_join_scope(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


def ledger_cost(*, sizes: list[int], events_per_row: int, rounds: int, env, admin_url) -> list:
    results = []
    for n in sizes:
        differing = fill_ledger(n, events_per_row, admin_url)
        samples, problems = {"plain": [], "ledger": []}, []
        for r in range(rounds + 1):  # the first round warms the caches, not recorded
            order = ("plain", "ledger") if r % 2 else ("ledger", "plain")
            for name in order:
                run = measure.run_process(CHECK + (["--ledger"] if name == "ledger" else []), env)
                if run.returncode not in (0, 1, 2):
                    problems.append(f"{name} exited {run.returncode}: {run.stderr[-300:]}")
                    continue
                report = json.loads(run.stdout)
                if name == "ledger" and report["ledger_mismatches"] != differing:
                    problems.append(
                        f"ledger_mismatches {report['ledger_mismatches']} != {differing}"
                    )
                if r:
                    samples[name].append({"wall_s": run.wall_s, "rss_mb": run.max_rss_mb, **report})

        def med(name, key, samples=samples):
            return statistics.median(s[key] for s in samples[name]) if samples[name] else None

        plain, with_ledger = med("plain", "wall_s"), med("ledger", "wall_s")
        results.append(
            {
                "n": n,
                "events": n * events_per_row,
                "differing_rows": differing,
                "rounds": rounds,
                "plain_wall_s": plain,
                "ledger_wall_s": with_ledger,
                "added_s": None if plain is None else round(with_ledger - plain, 3),
                "plain_duration_ms": med("plain", "duration_ms"),
                "ledger_duration_ms": med("ledger", "duration_ms"),
                "plain_rss_mb": max((s["rss_mb"] for s in samples["plain"]), default=None),
                "ledger_rss_mb": max((s["rss_mb"] for s in samples["ledger"]), default=None),
                "ledger_walls_s": [round(s["wall_s"], 3) for s in samples["ledger"]],
                "plain_walls_s": [round(s["wall_s"], 3) for s in samples["plain"]],
                "plan": explain(),
                "problems": problems,
            }
        )
    return results


def print_ledger(results: list, say) -> None:
    say("check_sync --ledger: what it adds to a check (whole processes, medians)")
    for r in results:
        say(
            f"  {r['n']:,} pairs, {r['events']:,} events: plain {r['plain_wall_s']:.3f} s,"
            f" --ledger {r['ledger_wall_s']:.3f} s, added {r['added_s']:.3f} s"
            f" (in-process {r['plain_duration_ms']} / {r['ledger_duration_ms']} ms);"
            f" peak RSS {r['plain_rss_mb']:.1f} / {r['ledger_rss_mb']:.1f} MB;"
            f" {r['differing_rows']} rows made to differ, found: "
            f"{'yes' if not r['problems'] else 'NO'}"
        )
        for problem in r["problems"]:
            say(f"    PROBLEM: {problem}")
    if results:
        say("Ledger query plan (largest size):")
        for line in results[-1]["plan"].splitlines():
            say(f"    {line}")


def goals(results: list) -> list[tuple[str, bool, str]]:
    out = []
    for r in results:
        if r["events"] >= 10_000_000:
            out.append(
                (
                    f"--ledger at {r['n']:,} pairs / {r['events']:,} events adds <= 10 s",
                    r["added_s"] is not None and r["added_s"] <= 10 and not r["problems"],
                    f"{r['added_s']} s",
                )
            )
    if len(results) > 1:
        rss = [r["ledger_rss_mb"] for r in results]
        out.append(
            (
                "--ledger memory flat (peak RSS spread <= 10 MB across sizes)",
                max(rss) - min(rss) <= 10,
                " / ".join(f"{r['n']:,}: {r['ledger_rss_mb']:.1f} MB" for r in results),
            )
        )
    return out


def from_environment(env, admin_url) -> list:
    return ledger_cost(
        sizes=[int(n) for n in os.environ.get("BENCH_LEDGER_N", "100000,1000000").split(",")],
        events_per_row=int(os.environ.get("BENCH_LEDGER_EVENTS", "10")),
        rounds=int(os.environ.get("BENCH_LEDGER_ROUNDS", "3")),
        env=env,
        admin_url=admin_url,
    )
