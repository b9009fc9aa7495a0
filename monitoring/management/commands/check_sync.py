import argparse
import importlib.metadata
import os
import signal
import sys
import threading
import traceback
from contextlib import contextmanager

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand
from django.db import DatabaseError, OperationalError
from django.utils import translation

from common.stop import stopped_by_signals
from monitoring import output, plugin, selectors, services
from monitoring.exceptions import MonitoringError, first_line
from monitoring.limits import RATE, SECONDS, within
from specializations.exceptions import ProgressionError


def seconds(value: str) -> float:
    """A finite number of seconds, 0 or more (argparse's float takes nan and inf)."""
    number = float(value)
    if not within(number, SECONDS):
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds (0 or more)")
    return number


def rate(value: str) -> float:
    """A consistency rate in percent, 0 to 100."""
    number = float(value)
    if not within(number, RATE):
        raise argparse.ArgumentTypeError(f"{value!r} is not a rate between {RATE[0]} and {RATE[1]}")
    return number


class Command(BaseCommand):
    help = (
        "Find every progress/licence desync with one set-based query, record the run and "
        "optionally repair. Exit codes: 0 healthy, 1 degraded, 2 critical, 3 could not check "
        "(the first line is then 'SYNC UNKNOWN - <reason>')."
    )
    requires_system_checks = []  # a monitoring probe must answer even when checks would fail

    exit_code = 0

    def get_version(self):
        # --version: the product's version, not Django's (BaseCommand's default).
        try:
            return importlib.metadata.version("academy-sync")
        except importlib.metadata.PackageNotFoundError:
            return "unknown (not installed)"

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        argparse_error = parser.error

        def error(message):
            # argparse exits 2, which cron and Nagios would read as "critical".
            if not parser.called_from_command_line:
                argparse_error(message)  # raises CommandError for call_command()
            self.stdout.write(plugin.unknown_line(f"bad arguments: {message}"))
            sys.exit(plugin.UNKNOWN)

        parser.error = error
        return parser

    def add_arguments(self, parser):
        parser.add_argument(
            "--specialization", help="Check one specialization (its catalogue code)."
        )
        parser.add_argument(
            "--repair", action="store_true", help="Repair every desync (the lower side moves up)."
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="With --repair: show what would change and change nothing.",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print the report as JSON (indented on a terminal, compact otherwise).",
        )
        parser.add_argument(
            "--no-record", action="store_true", help="Do not store a HealthCheckRun."
        )
        parser.add_argument(
            "--ledger",
            action="store_true",
            help="Also prove every progress row's totals equal the sum of its ledger events; "
            "a mismatch is at least degraded.",
        )
        parser.add_argument(
            "--database",
            default="default",
            help="Database alias to check, e.g. a read replica (repair always uses default).",
        )
        parser.add_argument(
            "--limit", type=int, default=None, help="Violations to print (default 20; JSON: all)."
        )
        parser.add_argument(
            "--warn-below",
            type=rate,
            help="Degraded below this rate, 0-100 (default SYNC_WARN_BELOW).",
        )
        parser.add_argument(
            "--critical-below",
            type=rate,
            help="Critical below this rate, 0-100 (default SYNC_CRITICAL_BELOW).",
        )
        parser.add_argument(
            "--timeout",
            type=seconds,
            default=60.0,
            help="Deadline in seconds for the whole check, connecting and waiting for locks "
            "included: past it, exit 3 (0: no limit; default 60).",
        )
        parser.add_argument(
            "--max-replica-lag",
            type=seconds,
            default=None,
            help="With --database: a replica further behind its primary than this many "
            "seconds is not believed, exit 3 (default SYNC_MAX_REPLICA_LAG_SECONDS).",
        )

    def handle(self, *args, **options):
        if options["dry_run"] and not options["repair"]:
            return self.unknown("--dry-run needs --repair")
        if options["limit"] is not None and options["limit"] < 0:
            return self.unknown(f"--limit={options['limit']} must be 0 or more")
        if options["repair"] and options["ledger"]:
            return self.unknown(
                "--ledger with --repair: repair moves levels, the ledger is checked on its own"
            )
        if options["repair"] and options["database"] != "default":
            return self.unknown(
                f"--database={options['database']!r} with --repair: repair writes to the primary"
            )
        try:
            self.exit_code = self.check(options)
        except (MonitoringError, ProgressionError) as exc:
            self.unknown(str(exc))
        except ImproperlyConfigured as exc:  # a project's setting refused where it is read
            self.unknown(f"configuration error: {first_line(exc)}")
        except DatabaseError as exc:
            problem = "unavailable" if isinstance(exc, OperationalError) else "error"
            self.unknown(f"database {options['database']!r} {problem}: {first_line(exc)}")
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM outside a repair's batches
            self.unknown("interrupted before the check completed")
        except Exception as exc:  # a bug must still read as UNKNOWN, not as WARNING (exit 1)
            self.unknown(f"internal error: {type(exc).__name__}: {first_line(exc)}")
            self.stderr.write(traceback.format_exc())

    def unknown(self, reason: str) -> None:
        """Could not check: the UNKNOWN status line (the reason once, on stdout), exit 3."""
        self.stdout.write(plugin.unknown_line(reason))
        self.exit_code = plugin.UNKNOWN

    def check(self, options) -> int:
        thresholds = services.Thresholds.from_settings(
            warn_below=options["warn_below"], critical_below=options["critical_below"]
        )
        common = {
            "specialization": options["specialization"],
            "using": options["database"],
            "thresholds": thresholds,
            "timeout": options["timeout"],
        }
        repair_report = None
        if options["repair"]:
            repair_report = self.repair(options, common)
            report = repair_report.check  # recorded with the repair's run
        else:
            with self.deadline(options["timeout"]):
                report = services.run_health_check(
                    record=not options["no_record"],
                    max_replica_lag=options["max_replica_lag"],
                    ledger=options["ledger"],
                    **common,
                )
        if options["json"]:
            indent = 2 if self.stdout.isatty() else None
            self.stdout.write(
                output.json_text(report, repair_report, limit=options["limit"], indent=indent)
            )
        else:
            for line in output.human_lines(
                report, repair_report, limit=options["limit"], verbosity=options["verbosity"]
            ):
                self.stdout.write(line)
        return plugin.EXIT_CODES[report.status]

    def repair(self, options, common):
        """Repair and record (one service, its run is its claim); refusals raise to UNKNOWN.

        ``--timeout`` stops the repair between batches and then bounds the check
        after it, so the watchdog allows twice the time.
        """
        # From the command line, SIGTERM (systemd's stop, a kill) stops a repair before its
        # next batch: the run is recorded as interrupted, exit 3.
        signals = (signal.SIGTERM,) if self._from_command_line else ()
        try:
            with self.deadline(2 * options["timeout"]), stopped_by_signals(*signals) as stop:
                return services.repair(
                    specialization=options["specialization"],
                    dry_run=options["dry_run"],
                    options=services.RepairOptions(
                        on_progress=self.progress_bar(options["specialization"]),
                        timeout=options["timeout"],
                        thresholds=common["thresholds"],
                        record=not options["no_record"],  # dry runs only: a repair is recorded
                        stop=stop,
                    ),
                )
        finally:
            self.end_progress_bar()

    @contextmanager
    def deadline(self, timeout: float):
        """The last resort behind ``--timeout`` when run by cron or a monitoring system.

        connect_timeout and statement_timeout bound what the server does; a
        server that stops answering mid-query (or a disk that hangs SQLite)
        answers nothing at all, so a watchdog prints the UNKNOWN line one
        second past the deadline and ends the process. Not armed under
        ``call_command``, where ending the process would end the caller.
        """
        if not timeout or not self._from_command_line:
            yield
            return
        lock, finished = threading.Lock(), []

        def expire():
            with lock:
                if finished:
                    return
                line = plugin.unknown_line(
                    f"the check did not complete within timeout={timeout:g} seconds"
                )
                os.write(sys.stdout.fileno(), (line + "\n").encode())
                os._exit(plugin.UNKNOWN)

        watchdog = threading.Timer(timeout + 1, expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            yield
        finally:
            with lock:
                finished.append(True)
            watchdog.cancel()

    def progress_bar(self, specialization: str | None):
        """A bar on stderr when it is a terminal; silent (and free) under cron.

        Sized by the latest recorded check over the same scope (cron's, typically)
        rather than by counting again: the bar is a guide, the report is the truth.
        """
        if not self.stderr.isatty():
            return None
        run = selectors.latest_run(specialization=specialization)
        if run is None or not run.inconsistent:
            return None
        self._bar = output.ProgressBar(self.stderr, run.inconsistent)
        return self._bar

    def end_progress_bar(self):
        if getattr(self, "_bar", None):
            self._bar.close()

    _from_command_line = False

    def execute(self, *args, **options):
        self.exit_code = 0
        # Read by cron, Icinga and scripts: English whatever LANGUAGE_CODE says.
        with translation.override(None):
            return super().execute(*args, **options)

    def run_from_argv(self, argv):
        self._from_command_line = True
        super().run_from_argv(argv)
        # The exit status is the product here (monitoring-plugin convention).
        sys.exit(self.exit_code)
