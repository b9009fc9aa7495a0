"""What the commit guard costs: update_progress under contention and repair, guard on and off.

The triggers are switched on the bench database itself (``guard.sync_triggers``),
in alternating rounds (on, off, on, off...) so that drift on a busy machine
falls on both sides; each figure is the median over its rounds. Import after
``django.setup()``.
"""

import statistics

from licenses import guard

from . import phases

STATES = ("on", "off")


def _median(runs: list[dict], key: str) -> float:
    return round(statistics.median(run[key] for run in runs), 1)


def guard_cost(
    *, seconds: float, repair_n: int, rounds: int, env: dict, admin_url: str, startup_s: float
) -> dict:
    contention = {state: {16: [], 64: []} for state in STATES}
    repair = {state: [] for state in STATES}
    try:
        for _ in range(rounds):
            for state in STATES:
                guard.sync_triggers(enabled=state == "on")
                for run in phases.contention(
                    seconds=seconds, workers=(16, 64), admin_url=admin_url
                ):
                    contention[state][run["workers"]].append(run)
                repair[state].append(
                    phases.repair(n=repair_n, env=env, admin_url=admin_url, startup_s=startup_s)
                )
    finally:
        guard.sync_triggers(enabled=True)
    result = {"rounds": rounds, "seconds": seconds, "repair_n": repair_n, "contention": {}}
    for workers in (16, 64):
        figures = {
            state: {
                "p50_ms": _median(contention[state][workers], "p50_ms"),
                "p95_ms": _median(contention[state][workers], "p95_ms"),
                "errors": sum(r["errors"] + r["deadlocks"] for r in contention[state][workers]),
                "desyncs": sum(r["desyncs"] for r in contention[state][workers]),
            }
            for state in STATES
        }
        figures["p50_ratio"] = figures["on"]["p50_ms"] / figures["off"]["p50_ms"]
        figures["p95_ratio"] = figures["on"]["p95_ms"] / figures["off"]["p95_ms"]
        result["contention"][workers] = figures
    result["repair"] = {
        state: {
            "pairs_per_s": _median(repair[state], "pairs_per_s"),
            "problems": [p for r in repair[state] for p in r["problems"]],
        }
        for state in STATES
    }
    result["repair"]["ratio"] = (
        result["repair"]["on"]["pairs_per_s"] / result["repair"]["off"]["pairs_per_s"]
    )
    return result


def goals(g: dict) -> list[tuple[str, bool, str]]:
    out = []
    for workers, f in g["contention"].items():
        out.append(
            (
                f"guard: update_progress at {workers} workers at most 10 % slower (p50 and p95)",
                f["p50_ratio"] <= 1.10 and f["p95_ratio"] <= 1.10,
                f"p50 {f['on']['p50_ms']} vs {f['off']['p50_ms']} ms ({f['p50_ratio']:.2f}x),"
                f" p95 {f['on']['p95_ms']} vs {f['off']['p95_ms']} ms ({f['p95_ratio']:.2f}x),"
                f" errors {f['on']['errors']}/{f['off']['errors']},"
                f" desyncs {f['on']['desyncs']}/{f['off']['desyncs']}",
            )
        )
    r = g["repair"]
    out.append(
        (
            "guard: repair at most 15 % slower",
            r["ratio"] >= 0.85 and not r["on"]["problems"],
            f"{r['on']['pairs_per_s']:,.0f} vs {r['off']['pairs_per_s']:,.0f} pairs/s"
            f" ({r['ratio']:.2f}x), problems on: {len(r['on']['problems'])}",
        )
    )
    return out


def print_guard(g: dict, say) -> None:
    say(f"Commit guard cost (median of {g['rounds']} alternating rounds, on vs off)")
    for workers, f in g["contention"].items():
        say(
            f"  update_progress, {workers} workers: p50 {f['on']['p50_ms']} vs"
            f" {f['off']['p50_ms']} ms ({f['p50_ratio']:.2f}x), p95 {f['on']['p95_ms']} vs"
            f" {f['off']['p95_ms']} ms ({f['p95_ratio']:.2f}x)"
        )
    r = g["repair"]
    say(
        f"  repair of {g['repair_n']:,} pairs: {r['on']['pairs_per_s']:,.0f} vs"
        f" {r['off']['pairs_per_s']:,.0f} pairs/s ({r['ratio']:.2f}x)"
    )
