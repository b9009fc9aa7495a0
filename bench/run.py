"""`make bench`: benchmarks of check_sync, contention and repair on PostgreSQL.

Environment: BENCH_N (sizes, default 10000,100000,1000000), DATABASE_URL (the
PostgreSQL server; the benchmark creates and drops its own database `bench`
there), BENCH_ROUNDS (5), BENCH_SAMPLE (pair-by-pair sample, 2000),
BENCH_CONTENTION_SECONDS (10), BENCH_REPAIR_N (100000,1000000: 10% desyncs),
BENCH_REPAIR_LOAD_N (1000000: pairs repaired while 16 workers call update_progress),
BENCH_SQLITE_N (100000), BENCH_ADMIN_N (1000000: pairs behind the admin pages),
BENCH_WEB_N (1000000: pairs behind the web load), BENCH_WEB_SECONDS (5 per run),
BENCH_WEB_ROUNDS (5),
BENCH_WEB_WORKERS (4 gunicorn workers),
BENCH_API_N (1000000: pairs behind the API load), BENCH_API_SECONDS (5 per run),
BENCH_API_ROUNDS (5), BENCH_API_BATCH_SECONDS (20), BENCH_API_BATCH_SENDERS (2),
BENCH_PARTS (scale,contention,repair,sqlite,admin,web,api,guard,ledger,catalogue,imports),
BENCH_GUARD_ROUNDS (2), BENCH_IMPORTS (progress,source: which doors the imports part
runs), BENCH_IMPORT_LINES (1000000: the events file, one per pair),
BENCH_IMPORT_SOURCE_USERS (100000: the replaced system's users, three pairs each),
BENCH_LEDGER_N (100000,1000000 pairs), BENCH_LEDGER_EVENTS (10 per progress row),
BENCH_LEDGER_ROUNDS (3),
BENCH_CATALOGUE_N (1000000: pairs whose levels follow a lowered threshold),
BENCH_GUARD_REPAIR_N (100000: the repair the guard is timed on),
BENCH_DATABASE (`bench`: the database's name), BENCH_KEEP_DB=1 to keep it afterwards.
Results: bench/results/bench-<time>.json and .txt; summary in BENCHMARKS.md.
"""

import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import data  # noqa: E402  (needs the project root on sys.path)

RESULTS = ROOT / "bench" / "results"
LINES: list[str] = []


def say(line: str = "") -> None:
    print(line, flush=True)
    LINES.append(line)


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),  # other work on the machine adds noise
        "platform": platform.platform(),
    }


def print_scale(rows: list[dict]) -> None:
    say("Scale of the check (medians; seconds unless stated)")
    head = (
        f"{'pairs':>9} {'check':>7} {'start':>6} {'own':>6} {'best':>6} {'default':>7}"
        f" {'own/best':>8} {'def/best':>8} {'RSS MB':>6} {'pair-by-pair':>12} {'speed-up':>8}"
    )
    say(head)
    for f in rows:
        say(
            f"{f['n']:>9,} {f['check_wall_s']:>7.3f} {f['startup_wall_s']:>6.3f}"
            f" {f['check_own_s']:>6.3f} {f['best_plan_s']:>6.3f} {f['default_plan_s']:>7.3f}"
            f" {f['own_over_best']:>7.2f}x {f['default_over_best']:>7.2f}x"
            f" {f['check_rss_mb']:>6.1f} {f['pair_by_pair_extrapolated_s']:>12.1f}"
            f" {f['speedup_vs_pair_by_pair']:>7.0f}x"
        )
    for f in rows:
        say(
            f"  n={f['n']:,}: check's in-process duration_ms {f['check_duration_ms']},"
            f" pair-by-pair {f['pair_by_pair_per_pair_ms']:.3f} ms/pair over"
            f" {f['pair_by_pair_sample']} sampled pairs, startup RSS {f['startup_rss_mb']:.1f} MB,"
            f" expected {f['expected']['inconsistent']} desyncs {f['expected']['by_kind']},"
            f" counts agree: {'yes' if not f['problems'] else 'NO'}"
        )
        for problem in f["problems"]:
            say(f"    PROBLEM: {problem}")
    if rows:
        say("Best plan (largest size):")
        for line in rows[-1]["plans"]["best"].splitlines():
            say(f"    {line}")
        say("Default plan (largest size):")
        for line in rows[-1]["plans"]["default"].splitlines():
            say(f"    {line}")


def goals(results: dict) -> list[tuple[str, bool | None, str]]:
    out = []
    scale = {f["n"]: f for f in results.get("scale", [])}
    if 1_000_000 in scale:
        f = scale[1_000_000]
        out.append(
            (
                "1M: check's own time <= 1.5x best plan",
                f["own_over_best"] <= 1.5,
                f"{f['own_over_best']:.2f}x ({f['check_own_s']:.3f} s vs {f['best_plan_s']:.3f} s)",
            )
        )
    if "rare" in results and results["rare"]["n"] == 1_000_000:
        r = results["rare"]
        out.append(
            (
                f"1M, {r['desyncs']} desyncs only: check's own time <= 1.5x best plan"
                " (not an issue goal; the same bound when desyncs are rare)",
                r["own_over_best"] <= 1.5,
                f"{r['own_over_best']:.2f}x ({r['check_own_s']:.3f} s vs {r['best_plan_s']:.3f} s)",
            )
        )
    if scale:
        rss = [f["check_rss_mb"] for f in scale.values()]
        out.append(
            (
                "peak RSS <= 80 MB and flat (spread <= 10 MB)",
                max(rss) <= 80 and max(rss) - min(rss) <= 10,
                " / ".join(f"{n:,}: {f['check_rss_mb']:.1f} MB" for n, f in scale.items()),
            )
        )
    if 100_000 in scale:
        f = scale[100_000]
        out.append(
            (
                "100k: >= 300x faster than pair-by-pair",
                f["speedup_vs_pair_by_pair"] >= 300,
                f"{f['speedup_vs_pair_by_pair']:.0f}x",
            )
        )
    for c in results.get("contention", []):
        clean = not (c["errors"] or c["deadlocks"] or c["desyncs"]) and c["conserved"]
        clean = clean and not c.get("ledger_mismatches")
        ok = clean and c["audit_rows_match"] and (c["workers"] < 64 or c["p95_ms"] < 200)
        out.append(
            (
                f"contention {c['workers']} {c['kind']}: 0 errors/deadlocks/desyncs, conserved,"
                " totals = sum of events" + (", p95 < 200 ms" if c["workers"] >= 64 else ""),
                ok,
                f"{c['errors']} errors, {c['deadlocks']} deadlocks, {c['desyncs']} desyncs,"
                f" conserved={c['conserved']}, {c.get('ledger_mismatches')} ledger mismatches,"
                f" p95 {c['p95_ms']} ms",
            )
        )
    repairs = {r["n"]: r for r in results.get("repair", [])}
    if 1_000_000 in repairs:
        r = repairs[1_000_000]
        out.append(
            (
                f"repair >= 4,000 pairs/s at 1M pairs with {r['desyncs']:,} desyncs (whole"
                " process), every pair counted once, 0 desyncs after",
                r["pairs_per_s"] >= 4000 and not r["problems"],
                f"{r['pairs_per_s']:,.0f} pairs/s, {r['desyncs_after']} desyncs after,"
                f" {len(r['problems'])} problems",
            )
        )
    if len(repairs) > 1:
        rss = [r["rss_mb"] for r in repairs.values()]
        out.append(
            (
                "repair memory flat (peak RSS spread <= 10 MB across sizes)",
                max(rss) - min(rss) <= 10,
                " / ".join(f"{n:,}: {r['rss_mb']:.1f} MB" for n, r in repairs.items()),
            )
        )
    if "repair_load" in results:
        r = results["repair_load"]
        out.append(
            (
                f"{r['workers']} workers calling update_progress during the repair:"
                " p99 <= 250 ms, 0 errors",
                r["p99_ms"] <= 250 and not r["errors"] and not r["problems"],
                f"p99 {r['p99_ms']} ms, {r['errors']} errors, {r['calls']:,} calls,"
                f" {len(r['problems'])} problems",
            )
        )
    if "sqlite" in results:
        s = results["sqlite"]
        out.append(("SQLite 100k correct", s["correct"], f"{s['check_wall_s']:.3f} s whole"))
    if "admin" in results:
        from bench import admin_pages

        out.extend(admin_pages.goals(results["admin"]))
    if "web" in results:
        from bench import web

        out.extend(web.goals(results["web"]))
    if "api" in results:
        from bench import api

        out.extend(api.goals(results["api"]))
    if "guard" in results:
        from bench import guard_cost

        out.extend(guard_cost.goals(results["guard"]))
    if "ledger" in results:
        from bench import ledger_cost

        out.extend(ledger_cost.goals(results["ledger"]))
    if "catalogue" in results:
        from bench import catalogue_follow

        out.extend(catalogue_follow.goals(results["catalogue"]))
    if "imports" in results:
        from bench import imports

        out.extend(imports.goals(results["imports"]))
    return out


def main() -> int:
    sizes = [int(n) for n in os.environ.get("BENCH_N", "10000,100000,1000000").split(",") if n]
    rounds = int(os.environ.get("BENCH_ROUNDS", "5"))
    default_parts = "scale,contention,repair,sqlite,admin,web,api,guard,ledger,catalogue,imports"
    parts = os.environ.get("BENCH_PARTS", default_parts).split(",")
    admin_url, bench_url = data.bench_urls(os.environ.get("DATABASE_URL", ""))
    env = data.subprocess_env(bench_url)
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connection

    from bench import admin_pages, catalogue_follow, guard_cost, imports, on_sqlite, phases, web

    started = datetime.now(UTC)
    results: dict = {
        "date": started.isoformat(timespec="seconds"),
        "commit": subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "machine": machine(),
    }
    data.recreate_database(admin_url)
    data.migrate(env)
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        results["machine"]["postgresql"] = cursor.fetchone()[0].split(" on ")[0]
    say(f"bench {results['date']} at {results['commit']} on {results['machine']}")
    try:
        if "scale" in parts:
            results["scale"] = []
            for n in sizes:
                t0 = time.perf_counter()
                results["scale"].append(
                    phases.scale(
                        n,
                        rounds=rounds,
                        sample=int(os.environ.get("BENCH_SAMPLE", "2000")),
                        env=env,
                        admin_url=admin_url,
                    )
                )
                say(f"  n={n:,} done in {time.perf_counter() - t0:.0f} s")
            print_scale(results["scale"])
            if sizes:
                r = phases.rare(max(sizes), rounds=min(rounds, 3), env=env, admin_url=admin_url)
                results["rare"] = r
                say(
                    f"Rare desyncs: {r['desyncs']} in {r['n']:,} pairs:"
                    f" check {r['check_wall_s']:.3f} s whole, own {r['check_own_s']:.3f} s"
                    " (in-process"
                    f" {r['check_duration_ms']} ms), best plan {r['best_plan_s']:.3f} s,"
                    f" own/best {r['own_over_best']:.2f}x, RSS {r['rss_mb']:.1f} MB,"
                    f" counts agree: {'yes' if not r['problems'] else 'NO'}"
                )
                for problem in r["problems"]:
                    say(f"    PROBLEM: {problem}")
        startup = (results.get("scale") or [{}])[-1].get("startup_wall_s", 0.0)
        if "contention" in parts:
            seconds = float(os.environ.get("BENCH_CONTENTION_SECONDS", "10"))
            results["contention"] = phases.contention(
                seconds=seconds, workers=(16, 64), admin_url=admin_url
            )
            say("Contention: update_progress on the same 100 students")
            for c in results["contention"]:
                say(
                    f"  {c['workers']:>2} {c['kind']}, {c['seconds']} s: {c['calls']} calls,"
                    f" {c['throughput_per_s']}/s, p50 {c['p50_ms']} ms, p95 {c['p95_ms']} ms,"
                    f" p99 {c['p99_ms']} ms, max {c['max_ms']} ms; errors {c['errors']},"
                    f" deadlocks {c['deadlocks']}, desyncs {c['desyncs']},"
                    f" XP/sessions/hours conserved {c['conserved']},"
                    f" level-ups {c['level_ups']} = audit rows {c['new_audit_rows']},"
                    f" ledger mismatches {c['ledger_mismatches']}"
                )
                for error in c["error_samples"]:
                    say(f"    error: {error}")
        if "repair" in parts:
            results["repair"] = []
            for n in [
                int(n) for n in os.environ.get("BENCH_REPAIR_N", "100000,1000000").split(",")
            ]:
                r = phases.repair(n=n, env=env, admin_url=admin_url, startup_s=startup)
                results["repair"].append(r)
                say(
                    f"Repair: {r['desyncs']:,} desyncs in {r['n']:,} pairs: {r['wall_s']:.2f} s"
                    f" whole process = {r['pairs_per_s']:,.0f} pairs/s"
                    f" ({r['pairs_per_s_without_startup']:,.0f} without start-up;"
                    f" repair loop alone {r['repair_duration_ms']} ms ="
                    f" {r['pairs_per_s_repair_only'] or 0:,.0f} pairs/s), RSS {r['rss_mb']:.1f} MB,"
                    f" {r['desyncs_after']} desyncs after, audit rows {r['audit_rows']}"
                    f" (expected {r['expected_audit_rows']})"
                )
                for problem in r["problems"]:
                    say(f"    PROBLEM: {problem}")
            from bench import repair_load

            n = int(os.environ.get("BENCH_REPAIR_LOAD_N", "1000000"))
            r = repair_load.repair_under_load(n=n, workers=16, env=env, admin_url=admin_url)
            results["repair_load"] = r
            say(
                f"Repair while {r['workers']} worker processes call update_progress on the"
                f" {r['students']:,} students with a desync: repair {r['repair_wall_s']} s"
                f" whole process, loop {r['repair_loop_ms']} ms,"
                f" {r['repaired']:,} repaired ({r['pairs_per_s']:,}/s whole,"
                f" {r['pairs_per_s_repair_loop']:,}/s loop; {r['skipped_locked']}"
                f" left locked; {r['repaired_by_students_first']:,} fixed by the students'"
                f" own updates first); {r['calls']:,} calls, p50 {r['p50_ms']} ms,"
                f" p95 {r['p95_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms;"
                f" errors {r['errors']}, deadlocks {r['deadlocks']}, desyncs after"
                f" {r['desyncs_after']}, XP conserved {r['conserved']}"
            )
            for error in r["error_samples"]:
                say(f"    error: {error}")
            for problem in r["problems"]:
                say(f"    PROBLEM: {problem}")
        if "admin" in parts:
            a = admin_pages.admin_pages(
                int(os.environ.get("BENCH_ADMIN_N", "1000000")), admin_url=admin_url
            )
            results["admin"] = a
            say(
                f"Admin list pages over {a['n']:,} pairs, {a['desync_percent']} % out of sync"
                f" (server time, median [min-max] of {a['rounds']}, staff user):"
            )
            for name, page in a["pages"].items():
                say(
                    f"  {name:<40} {page['median_s'] * 1000:7.1f} ms"
                    f" [{page['min_s'] * 1000:.0f}-{page['max_s'] * 1000:.0f}]"
                    f" {'/'.join(map(str, page['queries'])):>5} queries  HTTP {page['status']}"
                    f"  {page['rows']} rows"
                )
        if "web" in parts:
            w = web.web(
                int(os.environ.get("BENCH_WEB_N", "1000000")),
                env=env,
                admin_url=admin_url,
                seconds=int(os.environ.get("BENCH_WEB_SECONDS", "5")),
                rounds=int(os.environ.get("BENCH_WEB_ROUNDS", "5")),
                workers=int(os.environ.get("BENCH_WEB_WORKERS", "4")),
            )
            results["web"] = w
            web.print_web(w, say)
        if "api" in parts:
            from bench import api

            a = api.api(
                int(os.environ.get("BENCH_API_N", "1000000")),
                env=env,
                admin_url=admin_url,
                seconds=int(os.environ.get("BENCH_API_SECONDS", "5")),
                rounds=int(os.environ.get("BENCH_API_ROUNDS", "5")),
                workers=int(os.environ.get("BENCH_WEB_WORKERS", "4")),
                batch_seconds=int(os.environ.get("BENCH_API_BATCH_SECONDS", "20")),
                senders=int(os.environ.get("BENCH_API_BATCH_SENDERS", "2")),
            )
            results["api"] = a
            api.print_api(a, say)
        if "guard" in parts:
            g = guard_cost.guard_cost(
                seconds=float(os.environ.get("BENCH_CONTENTION_SECONDS", "10")),
                repair_n=int(os.environ.get("BENCH_GUARD_REPAIR_N", "100000")),
                rounds=int(os.environ.get("BENCH_GUARD_ROUNDS", "2")),
                env=env,
                admin_url=admin_url,
                startup_s=startup,
            )
            results["guard"] = g
            guard_cost.print_guard(g, say)
        if "ledger" in parts:
            from bench import ledger_cost

            results["ledger"] = ledger_cost.from_environment(env, admin_url)
            ledger_cost.print_ledger(results["ledger"], say)
        if "catalogue" in parts:
            c = catalogue_follow.catalogue_follow(
                int(os.environ.get("BENCH_CATALOGUE_N", "1000000")), env=env, admin_url=admin_url
            )
            results["catalogue"] = c
            catalogue_follow.print_catalogue(c, say)
        if "imports" in parts:
            doors = os.environ.get("BENCH_IMPORTS", "progress,source").split(",")
            results["imports"] = {}
            if "progress" in doors:
                results["imports"]["import_progress"] = imports.progress_file(
                    int(os.environ.get("BENCH_IMPORT_LINES", "1000000")),
                    env=env,
                    admin_url=admin_url,
                    folder=Path(os.environ.get("BENCH_IMPORT_FOLDER", "/tmp")),
                )
            if "source" in doors:
                results["imports"]["import_source"] = imports.source_database(
                    int(os.environ.get("BENCH_IMPORT_SOURCE_USERS", "100000")),
                    env=env,
                    admin_url=admin_url,
                )
            imports.print_imports(results["imports"], say)
        if "sqlite" in parts:
            s = on_sqlite.sqlite(
                n=int(os.environ.get("BENCH_SQLITE_N", "100000")),
                rounds=min(rounds, 3),
                env=env,
                path=Path(os.environ.get("BENCH_SQLITE_PATH", "/tmp/bench.sqlite3")),
            )
            results["sqlite"] = s
            say(
                f"SQLite {s['n']:,} pairs: check {s['check_wall_s']:.3f} s whole, start-up"
                f" {s['startup_wall_s']:.3f} s, own {s['check_own_s']:.3f} s (in-process"
                f" {s['check_duration_ms']} ms), RSS {s['rss_mb']:.1f} MB, correct {s['correct']}"
            )
            for problem in s["problems"]:
                say(f"    PROBLEM: {problem}")
    finally:
        connection.close()
        if os.environ.get("BENCH_KEEP_DB") != "1":
            data.drop_database(admin_url)
    results["machine"]["load_average_at_end"] = os.getloadavg()
    results["goals"] = goals(results)
    say("Goals")
    for name, met, detail in results["goals"]:
        say(f"  [{'met ' if met else 'MISS'}] {name}: {detail}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"bench-{started.strftime('%Y%m%d-%H%M%S')}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str))
    stem.with_suffix(".txt").write_text("\n".join(LINES) + "\n")
    say(f"results: {stem}.json / .txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
