"""The metrics as Prometheus itself scrapes them: Debian's prometheus against the production
server, with the shipped alert rules loaded.

A real scrape negotiates the format (Prometheus asks for OpenMetrics), parses
every series and evaluates the rules; the test reads the outcome back through
Prometheus' HTTP API.
"""

import json
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.production import SERVER_TOKEN, free_port, require_tool, stop

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "monitoring" / "prometheus" / "rules.yml"


def api(base: str, path: str, **params) -> dict:
    url = f"{base}/api/v1/{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)["data"]


def value(base: str, query: str) -> float | None:
    result = api(base, "query", query=query)["result"]
    return float(result[0]["value"][1]) if result else None


@pytest.fixture
def prometheus(production_server, tmp_path):
    binary = require_tool("prometheus")
    port, target = free_port(), production_server.url.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["{RULES}"]
scrape_configs:
  - job_name: academy-sync
    metrics_path: /health/sync/metrics
    authorization:
      type: Bearer
      credentials: {SERVER_TOKEN}
    static_configs:
      - targets: ["{target}"]
"""
    )
    log = tmp_path / "prometheus.log"
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                targets = api(base, "targets")["activeTargets"]
                if targets and targets[0]["health"] == "up":
                    break
                error = targets[0]["lastError"] if targets else ""
            except OSError:
                error = "not listening yet"
            assert process.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, f"no successful scrape: {error}"
            time.sleep(0.3)
        yield base
    finally:
        stop(process)


def test_prometheus_scrapes_every_series_and_loads_the_rules(
    committed_db, production_server, prometheus
):
    result = production_server.manage("check_sync", "-v", "0")
    assert result.returncode == 0, result.stdout + result.stderr  # an empty database: healthy
    deadline = time.monotonic() + 30
    while value(prometheus, "academy_sync_last_check_timestamp_seconds") is None:
        assert time.monotonic() < deadline, "the recorded run never reached Prometheus"
        time.sleep(0.3)
    assert value(prometheus, 'up{job="academy-sync"}') == 1
    assert value(prometheus, 'academy_sync_health{state="healthy"}') == 1
    assert value(prometheus, "academy_sync_consistency_ratio") == 1
    assert value(prometheus, "academy_sync_stale_after_seconds") == 900
    assert value(prometheus, "academy_sync_repairs_total") == 0
    (target,) = api(prometheus, "targets")["activeTargets"]
    assert target["lastError"] == ""
    groups = api(prometheus, "rules")["groups"]
    rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert set(rules) == {
        "AcademySyncTargetDown",
        "AcademySyncCritical",
        "AcademySyncDegraded",
        "AcademySyncCheckStale",
    }
    assert all(rule["health"] in ("ok", "unknown") for rule in rules.values()), rules
    time.sleep(1.5)  # one more evaluation with the run in place: nothing fires
    assert api(prometheus, "alerts")["alerts"] == []


def test_a_critical_check_fires_its_alert(committed_db, production_server, prometheus):
    seeded = production_server.manage("seed_demo", "--force")  # 9 desyncs in 362 pairs
    assert seeded.returncode == 0, seeded.stderr
    result = production_server.manage(
        "check_sync", "-v", "0", "--warn-below", "99.5", "--critical-below", "99"
    )
    assert result.returncode == 2, result.stdout + result.stderr
    deadline = time.monotonic() + 30
    while True:
        firing = [a for a in api(prometheus, "alerts")["alerts"] if a["state"] == "firing"]
        if firing:
            break
        assert time.monotonic() < deadline, "AcademySyncCritical never fired"
        time.sleep(0.3)
    assert [a["labels"]["alertname"] for a in firing] == ["AcademySyncCritical"]
    assert firing[0]["labels"]["severity"] == "critical"
    assert value(prometheus, "academy_sync_status") == 2
    assert value(prometheus, 'academy_sync_desync_pairs{kind="missing_license"}') == 3
    assert value(prometheus, "academy_sync_consistency_ratio") == pytest.approx(353 / 362)
