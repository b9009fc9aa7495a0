"""Realistic bugs, one per mutant: the mistakes a developer would make in these modules.

Each names a snippet that occurs exactly once in its file and what replaces it.
``tests`` narrows the run (default: the fast suite); ``postgres`` runs it on
PostgreSQL (row locks, races); ``equivalent`` explains a mutant no test can
kill because it does not change behaviour.
"""

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Mutant:
    id: str
    path: str
    old: str
    new: str
    why: str
    tests: list[str] = field(default_factory=list)
    postgres: bool = False
    equivalent: str = ""


MUTANTS = [
    # --- licenses/consistency.py: the one desync definition ---
    Mutant(
        "mismatch-one-way",
        "licenses/consistency.py",
        'LEVEL_MISMATCH: ("both", "<>"),',
        'LEVEL_MISMATCH: ("both", ">"),',
        "a licence ahead of its progress is not a mismatch",
    ),
    Mutant(
        "keyset-skips-a-users-next-spec",
        "licenses/consistency.py",
        'sql += " AND (user_id > %s OR (user_id = %s AND specialization_id > %s))"',
        'sql += " AND (user_id > %s OR (user_id = %s AND specialization_id > %s AND false))"',
        "a keyset page continues after the user, losing their next specializations",
    ),
    Mutant(
        "sqlite-union-inverted",
        "licenses/consistency.py",
        'f"NOT EXISTS (SELECT 1 FROM {progress_table} p WHERE {on})"',
        'f"EXISTS (SELECT 1 FROM {progress_table} p WHERE {on})"',
        "SQLite's second branch takes licences with progress instead of without",
    ),
    Mutant(
        "classify-other-pairs",
        "licenses/consistency.py",
        "            if (pair.user_id, pair.specialization_id) in wanted\n",
        "",
        "classify returns every pair of the asked users, not only the asked pairs",
    ),
    Mutant(
        "licence-filter-dropped",
        "licenses/consistency.py",
        'l_where, l_params = _filters("l", "user_id", **filters)',
        'l_where, l_params = _filters("l", "user_id", **{**filters, "specialization": None})',
        "a specialization filter restricts progress rows only",
    ),
    # --- licenses/services.py: coupling writes ---
    Mutant(
        "max-achieved-drops",
        "licenses/services.py",
        "license.max_achieved_level = max(license.max_achieved_level, to_level)",
        "license.max_achieved_level = to_level",
        "max_achieved_level follows the level down",
    ),
    Mutant(
        "hook-lowers-licence",
        "licenses/services.py",
        "elif license.current_level > progress.current_level:",
        "elif license.current_level > progress.current_level + 100:",
        "the hook lowers a licence that is ahead instead of raising the progress",
    ),
    Mutant(
        "level-range-off-by-one",
        "licenses/services.py",
        "if not 1 <= new_level <= info.max_level:",
        "if not 1 <= new_level < info.max_level:",
        "update_level_atomic refuses the top level",
    ),
    Mutant(
        "control-characters-allowed",
        "specializations/services.py",
        '_CONTROL = re.compile("[\\x00-\\x1f\\x7f-\\x9f\\ud800-\\udfff]")',
        '_CONTROL = re.compile("[\\x00]")',
        "only NUL is refused in a reason, a source or a key; other control characters are stored",
    ),
    Mutant(
        "absent-inconsistent",
        "licenses/services.py",
        "return self.kind in (consistency.OK, ABSENT)",
        "return self.kind == consistency.OK",
        "a student with no rows reads as inconsistent",
    ),
    Mutant(
        "no-audit-on-move",
        "licenses/services.py",
        "    license.save(update_fields=ADVANCED_FIELDS)\n    entry.save(force_insert=True)\n",
        "    license.save(update_fields=ADVANCED_FIELDS)\n",
        "a licence level change writes no history row",
    ),
    # --- specializations/services.py and the catalogue ---
    Mutant(
        "update-fields-forget-level",
        "specializations/services.py",
        'fields.append("current_level")  # tells the auto-sync hook to move the licence',
        "pass",
        "a level-up is not saved (nor seen by the hook)",
    ),
    Mutant(
        "negative-amount-allowed",
        "specializations/services.py",
        "if value < 0:\n            raise NegativeAmount(amount, amounts[amount], total=value)",
        "if value < -1000:\n            raise NegativeAmount(amount, amounts[amount], total=value)",
        "a correction may take a total below 0 (down to -1000)",
    ),
    Mutant(
        "skip-a-level",
        "specializations/catalogue.py",
        "if requirement.number != level + 1 or requirement.number > self.max_level:",
        "if requirement.number > self.max_level:",
        "levels may be skipped when a later one's requirement is met",
    ),
    Mutant(
        "projects-unchecked",
        "specializations/catalogue.py",
        "            and projects >= self.required_projects\n",
        "",
        "required projects are read from the catalogue but never compared",
    ),
    # --- the catalogue as data: loading files, levels following a change ---
    Mutant(
        "eased-means-raised",
        "specializations/catalogue_load.py",
        "if any(new < old for name, (old, new) in changes.items() if name in checked)",
        "if any(new > old for name, (old, new) in changes.items() if name in checked)",
        "a lowered threshold moves nobody (a raised one is followed instead)",
        tests=["tests/test_catalogue_load.py"],
    ),
    Mutant(
        "catalogue-move-repairs-desyncs",
        "licenses/catalogue_follow.py",
        'f" FROM {_PROGRESS} p WHERE {qualifying} AND {_IN_SYNC}",',
        'f" FROM {_PROGRESS} p WHERE {qualifying}",',
        "a catalogue change silently moves pairs that were out of sync",
        tests=["tests/test_catalogue_load.py"],
    ),
    Mutant(
        "catalogue-move-drops-highest-level",
        "licenses/catalogue_follow.py",
        'f" (SELECT m.new_level, max({_LICENSE}.max_achieved_level, m.new_level), %s"',
        'f" (SELECT m.new_level, m.new_level, %s"',
        "a licence moved by a catalogue change forgets its highest level",
        tests=["tests/test_catalogue_load.py"],
    ),
    Mutant(
        "catalogue-move-unlocked",
        "licenses/catalogue_follow.py",
        "               FOR UPDATE OF p, l\n",
        "",
        "a pair another transaction is changing is moved from its stale level",
        tests=["tests/test_catalogue_follow_locks.py"],
        postgres=True,
    ),
    # --- licenses/signals.py: the hook ---
    Mutant(
        "raw-saves-synced",
        "licenses/signals.py",
        "if raw or (not created",
        "if (not created",
        "a fixture load issues licences and history",
    ),
    Mutant(
        "update-fields-ignored",
        "licenses/signals.py",
        ' and "current_level" not in update_fields):',
        " and False):",
        "a save naming other fields still runs the hook",
    ),
    # --- monitoring/plugin.py: what Nagios and Icinga read ---
    Mutant(
        "range-without-colon",
        "monitoring/plugin.py",
        "f\"'consistency'={report.consistency_rate:.2f}%;{_number(warn_below)}:;\"",
        "f\"'consistency'={report.consistency_rate:.2f}%;{_number(warn_below)};\"",
        "the warning range loses its colon (alerts above 99 instead of below)",
    ),
    Mutant(
        "plain-thresholds-swapped",
        "monitoring/plugin.py",
        "f\"'desync_percent'={desync_percent:.2f}%;{_number(100 - warn_below)};\"",
        "f\"'desync_percent'={desync_percent:.2f}%;{_number(100 - critical_below)};\"",
        "Icinga's warning threshold is the critical one",
    ),
    Mutant(
        "degraded-exits-2",
        "monitoring/plugin.py",
        "EXIT_CODES = {HEALTHY: 0, DEGRADED: 1, CRITICAL: 2}",
        "EXIT_CODES = {HEALTHY: 0, DEGRADED: 2, CRITICAL: 2}",
        "degraded exits as critical",
    ),
    Mutant(
        "unknown-multiline",
        "monitoring/plugin.py",
        "return f\"SYNC UNKNOWN - {' '.join(reason.split())}\"",
        'return f"SYNC UNKNOWN - {reason}"',
        "a reason with a line break spreads the UNKNOWN line over two",
        equivalent=(
            "every reason reaching it is already one line (first_line() of database "
            "errors, single-line messages elsewhere); the join is a belt for future callers"
        ),
    ),
    # --- monitoring/views.py: the endpoint's access rule and answer ---
    Mutant(
        "token-prefix-accepted",
        "monitoring/views.py",
        "if hmac.compare_digest(token.encode(), expected.encode()):",
        "if expected.startswith(token):",
        "a prefix of the token is accepted",
    ),
    Mutant(
        "inactive-staff-allowed",
        "monitoring/views.py",
        "if user.is_active and user.is_staff:",
        "if user.is_staff:",
        "a deactivated staff session still reads the endpoint",
        equivalent=(
            "Django's ModelBackend never authenticates an inactive user, so no session "
            "of one reaches the view; the check stays as a second line"
        ),
    ),
    Mutant(
        "stale-is-up",
        "monitoring/views.py",
        "return JsonResponse(summary(health), status=200 if health.up else 503)",
        'return JsonResponse(summary(health), status=200 if health.state != "critical" else 503)',
        "a stale or missing run answers 200",
    ),
    Mutant(
        "db-error-500",
        "monitoring/views.py",
        "            except DatabaseError as exc:\n"
        "                with translation.override(None):",
        "            except ZeroDivisionError as exc:\n"
        "                with translation.override(None):",
        "without a database the endpoint answers 500 with a traceback",
    ),
    # --- monitoring/health.py: the one decision ---
    Mutant(
        "stale-boundary",
        "monitoring/health.py",
        "if age > app_settings.SYNC_STALE_AFTER_SECONDS:",
        "if age >= app_settings.SYNC_STALE_AFTER_SECONDS:",
        "a run exactly at the stale age reads as stale",
    ),
    Mutant(
        "warn-boundary",
        "monitoring/health.py",
        "        if rate >= self.warn_below:\n            return HEALTHY",
        "        if rate > self.warn_below:\n            return HEALTHY",
        "exactly the warning rate reads as degraded",
    ),
    Mutant(
        "critical-is-up",
        "monitoring/health.py",
        "UP_STATES = (HEALTHY, DEGRADED)",
        "UP_STATES = (HEALTHY, DEGRADED, CRITICAL)",
        "a critical run keeps the application in rotation",
    ),
    # --- monitoring/repair/ and the run it records (PostgreSQL: real locks) ---
    Mutant(
        "repair-lowers-the-higher-side",
        "monitoring/repair/plan.py",
        "action, target = (RAISE_LICENSE, p) if p > lic else (RAISE_PROGRESS, lic)",
        "action, target = (RAISE_LICENSE, p) if p < lic else (RAISE_PROGRESS, lic)",
        "repair moves the higher side down to the lower",
    ),
    Mutant(
        "stale-plan-written",
        "monitoring/repair/batch.py",
        "            a = (state := current.get(key)) and plan(state)\n",
        "            a = planned[key]\n",
        "the plan made before the lock is written without re-reading the pair",
        tests=["tests/test_repair_locks.py", "tests/test_repair.py"],
        postgres=True,
    ),
    Mutant(
        "locked-pairs-uncounted",
        "monitoring/repair/batch.py",
        "                result.locked.append(key)\n",
        "                pass\n",
        "pairs another transaction holds are neither counted nor sampled as left",
        tests=["tests/test_repair_locks.py", "tests/test_repair_faults.py"],
        postgres=True,
    ),
    Mutant(
        "others-licences-counted",
        "monitoring/repair/batch.py",
        "a for a in actions if a.action != CREATE_LICENSE"
        " or (a.user_id, a.specialization_id) in done",
        "a for a in actions",
        "a licence another transaction inserted counts as repaired (and gets a log entry)",
        tests=["tests/test_repair_locks.py", "tests/test_repair.py", "tests/test_repair_runs.py"],
        postgres=True,
    ),
    Mutant(
        "batch-report-zero",
        "monitoring/repair/batch.py",
        "claim.report_batch(run, repaired=len(result.actions), examined=examined)",
        "claim.report_batch(run, repaired=0, examined=examined)",
        "the run records no repairs as its batches commit (repairs_total loses them)",
    ),
    Mutant(
        "single-flight-off",
        "monitoring/repair/claim.py",
        "            if holder is not None:\n",
        "            if False:\n",
        "a second repair over an overlapping scope is not refused",
    ),
    # --- monitoring/services.py, check_scope.py, replica.py, metrics.py ---
    Mutant(
        "rate-rounded-up",
        "monitoring/services.py",
        'return float(rate.quantize(Decimal("0.01"), rounding=ROUND_DOWN))',
        'return float(rate.quantize(Decimal("0.01")))',
        "a rate of 99.999 % reads as 100.00 %",
    ),
    Mutant(
        "no-statement-timeout",
        "monitoring/check_scope.py",
        'extra = {"statement_timeout": str(max(1, round(timeout * 1000)))} if timeout else {}',
        "extra = {}",
        "--timeout no longer bounds a query waiting on a lock",
        tests=["tests/test_plugin_output.py", "tests/test_monitor_faults.py"],
        postgres=True,
    ),
    Mutant(
        "lagging-replica-believed",
        "monitoring/services.py",
        "if lag is not None and lag.seconds > max_replica_lag:",
        "if lag is not None and lag.seconds > max_replica_lag + 3600:",
        "a replica minutes behind is checked and recorded as current",
        tests=["tests/test_replica.py"],
        postgres=True,
    ),
    Mutant(
        "silent-replica-believed",
        "monitoring/replica.py",
        'if position is None and receiver != "streaming":',
        "if False:",
        "a standby that neither streams nor reaches its primary is believed",
        tests=["tests/test_replica.py"],
        postgres=True,
    ),
    Mutant(
        "replica-not-waited-for",
        "monitoring/replica.py",
        "if caught_up or paused or time.monotonic() >= deadline:",
        "if True:",
        "a standby in step with a quiet primary reads as behind by the whole quiet spell",
        tests=["tests/test_replica.py"],
        postgres=True,
    ),
    Mutant(
        "ratio-from-rounded-rate",
        "monitoring/metrics.py",
        "return run.consistent / run.total_checked if run.total_checked else 1.0",
        "return float(run.consistency_rate) / 100",
        "consistency_ratio is the rounded percentage again",
    ),
    # --- monitoring/selectors.py ---
    Mutant(
        "filtered-run-decides",
        "monitoring/selectors.py",
        'filter(specialization=specialization or "", state=RunState.DONE)',
        "filter(state=RunState.DONE)",
        "a run over one specialization decides the health of all",
    ),
    # --- four behaviours a probe found unheld (issue 29) ---
    Mutant(
        "stream-stops-before-last-user",
        "licenses/consistency.py",
        "while top is not None and first <= top:",
        "while top is not None and first < top:",
        "the violation stream drops the last user of the walk when a range starts on it",
        tests=["tests/test_violation_ranges.py"],
    ),
    Mutant(
        "classify-before-locks",
        "monitoring/repair/batch.py",
        "        created = _create_missing_progress(by_action[CREATE_PROGRESS])\n"
        "        progress = _lock_ids(\n"
        "            SpecializationProgress,\n"
        '            "student_id",\n'
        "            by_action[RAISE_PROGRESS] + by_action[CREATE_LICENSE],\n"
        "        )\n"
        '        licences = _lock(UserLicense, "user_id", by_action[RAISE_LICENSE])\n'
        "        # Re-check under the locks with the one definition: a pair fixed since it\n"
        "        # was listed is left alone, one that changed shape waits for the retry.\n"
        "        current = consistency.classify(list(planned))\n",
        "        current = consistency.classify(list(planned))\n"
        "        created = _create_missing_progress(by_action[CREATE_PROGRESS])\n"
        "        progress = _lock_ids(\n"
        "            SpecializationProgress,\n"
        '            "student_id",\n'
        "            by_action[RAISE_PROGRESS] + by_action[CREATE_LICENSE],\n"
        "        )\n"
        '        licences = _lock(UserLicense, "user_id", by_action[RAISE_LICENSE])\n',
        "a batch re-reads its pairs before its row locks: a pair changed while it waited is "
        "written from the stale reading",
        tests=["tests/test_repair_plan_race.py"],
        postgres=True,
    ),
    Mutant(
        "latest-run-any-scope",
        "monitoring/selectors.py",
        'filter(specialization=specialization or "", state=RunState.DONE)',
        "filter(Q(specialization=specialization) if specialization else Q(), state=RunState.DONE)",
        "the latest run of the whole scope is the latest run of any scope",
        tests=["tests/test_latest_run.py"],
    ),
    Mutant(
        "bearer-scheme-case-sensitive",
        "monitoring/views.py",
        'scheme.lower() == "bearer"',
        'scheme == "Bearer"',
        "a token sent as `bearer` (any case but Bearer) is not read",
        tests=["tests/test_bearer_scheme.py"],
    ),
    # --- api/: keys, answers, batches ---
    Mutant(
        "cached-key-not-compared",
        "api/selectors.py",
        "return client if keys.matches(key, digest) else None",
        "return client",
        "a remembered key's prefix with any secret is taken for the key",
        tests=["tests/test_api_keys.py", "tests/test_api_auth.py"],
    ),
    Mutant(
        "revoked-key-remembered",
        "api/services.py",
        "transaction.on_commit(lambda: selectors.forget_keys(prefixes))",
        "pass",
        "a revoked key stays usable on the revoking server until its cache entry ends",
        tests=["tests/test_api_keys.py", "tests/test_api_auth.py"],
    ),
    Mutant(
        "batch-replay-fingerprint-ignored",
        "api/events.py",
        " or record.fingerprint != prints[index]",
        "",
        "a batch reusing a key for another event (same amounts, another reason) is a replay",
        tests=["tests/test_api_events.py"],
    ),
    Mutant(
        "problem-echo-unescaped",
        "api/problems.py",
        'json.dumps(body, ensure_ascii=False, default=str).encode("utf-8", "backslashreplace")',
        "json.dumps(body, ensure_ascii=False, default=str)",
        "a refused value holding a lone surrogate cannot be encoded: a 500 instead of a 422",
        tests=["tests/test_api_errors.py"],
    ),
    Mutant(
        "occurred-at-any-range",
        "specializations/services.py",
        "        value.astimezone(UTC)  # what the database stores (SQLite: UTC, naive)\n",
        "        pass\n",
        "a time that has no UTC equivalent (year 9999 at -14:00) reaches the database",
        tests=["tests/test_ledger.py", "tests/test_api_errors.py"],
    ),
    Mutant(
        "batch-shape-refusals-alone",
        "api/errors.py",
        'if any("index" in error for error in errors) and getattr(request, "auth", None):',
        "if False:",
        "a batch with a malformed event hides its other bad events until it is sent again",
        tests=["tests/test_api_events.py"],
    ),
    Mutant(
        "batch-refusals-misplaced",
        "api/events.py",
        "earlier, index = first_index.setdefault(event.key, place), at[place]",
        "earlier, index = first_index.setdefault(event.key, place), place",
        "beside a malformed event, the others' refusals name the wrong items",
        tests=["tests/test_api_events.py"],
    ),
    Mutant(
        "fingerprint-not-canonical",
        "api/events.py",
        'CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))',
        'CANONICAL = json.JSONEncoder(separators=(",", ":"))',
        "fingerprints follow the schema's field order: a release that reorders it turns"
        " every retry of an earlier event into a 409",
        tests=["tests/test_api_events.py"],
    ),
    Mutant(
        "worker-not-frozen",
        "config/gunicorn_conf.py",
        "    gc.freeze()\n",
        "",
        "every full collection walks the worker's modules again (11 ms of a batch)",
        tests=["tests/test_production.py"],
    ),
    Mutant(
        "batch-locks-by-student-only",
        "specializations/bulk.py",
        'where, params = exact_pairs(table, "student_id", sorted(pairs))',
        'where, params = exact_pairs(table, "student_id", sorted(pairs)[:1])',
        "a batch locks the first pair only; the others are enrolled again",
        tests=["tests/test_api_events.py", "tests/test_bulk_progress.py"],
    ),
    # --- common/bulk_sql.py and the batches: what the set-based writers send ---
    Mutant(
        "array-quotes-unescaped",
        "common/bulk_sql.py",
        """return '"' + text.replace("\\\\", "\\\\\\\\").replace('"', '\\\\"') + '"'""",
        """return '"' + text.replace("\\\\", "\\\\\\\\") + '"'""",
        "a double quote inside a text value ends its array element early",
        tests=["tests/test_bulk_sql.py"],
        postgres=True,
    ),
    Mutant(
        "array-fast-path-unchecked",
        "common/bulk_sql.py",
        """if '"' not in text and "\\\\" not in text:""",
        """if '"' not in text:""",
        "text with a backslash and no quote is sent unescaped: PostgreSQL drops the backslash",
        tests=["tests/test_bulk_sql.py"],
        postgres=True,
    ),
    Mutant(
        "batch-rows-shared",
        "specializations/bulk.py",
        "progress = row if index == by_pair[pair][-1] else copy.copy(row)",
        "progress = row",
        "every update of a pair shows the row as the batch's last event left it",
        tests=["tests/test_bulk_progress.py", "tests/test_api_events.py"],
    ),
    Mutant(
        "batch-raise-unreported",
        "specializations/bulk.py",
        "updates[index] = replace(updates[index], new_level=row.current_level)",
        "pass",
        "a licence ahead raises the row, and the batch's update still reports the level earned",
        tests=["tests/test_bulk_progress.py", "tests/test_api_events.py"],
    ),
    Mutant(
        "json-documents-shifted",
        "common/bulk_sql.py",
        "-> (t.n - 1)::integer",
        "-> (t.n)::integer",
        "each row gets the next row's JSON document (the last one none)",
        tests=["tests/test_bulk_sql.py", "tests/test_api_events.py"],
        postgres=True,
    ),
    Mutant(
        "earlier-keys-any-source",
        "specializations/bulk.py",
        "WHERE source = %s AND idempotency_key = k.key LIMIT 1",
        "WHERE (source = %s OR true) AND idempotency_key = k.key LIMIT 1",
        "a key another source used is taken for this client's earlier event",
        tests=["tests/test_bulk_progress.py", "tests/test_api_events.py"],
        postgres=True,
    ),
    Mutant(
        "event-columns-shifted",
        "specializations/bulk.py",
        "for name, default in _event_columns()])",
        "for name, default in _event_columns()][1:], None)",
        "a batch's events are built one column off (the source in the progress id, ...)",
        tests=["tests/test_bulk_progress.py", "tests/test_api_events.py"],
    ),
    Mutant(
        "batch-change-unseen",
        "specializations/bulk.py",
        "        if state == read[pair]:",
        "        if state is not None:",
        "a row another transaction changed while the batch waited for its lock is written"
        " from what the batch read before: that transaction's amounts are lost",
        tests=["tests/test_bulk_progress.py"],
        postgres=True,
    ),
]
