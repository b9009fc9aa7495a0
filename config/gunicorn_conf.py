"""gunicorn's settings for production: ``gunicorn -c python:config.gunicorn_conf``.

The same command works from a checkout and from an installed wheel. Every value
can be changed on the command line (it wins over this file) or through the
variables below; see docs/production.md.

GUNICORN_BIND     address to listen on (default 127.0.0.1:8000, behind the TLS proxy)
GUNICORN_WORKERS  worker processes (default 2 x usable cores + 1)
GUNICORN_TIMEOUT  seconds a request may take before its worker is killed (default 30)
GUNICORN_CONTROL_SOCKET
                  path of gunicorn's control socket (for ``gunicornc``); default
                  $RUNTIME_DIRECTORY/gunicorn.ctl under systemd, else no socket
"""

import gc
import os
import subprocess
import sys


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise SystemExit(f"{name}={raw!r}: expected a whole number of at least 1.")
    return int(raw)


def _control_socket() -> str | None:
    # gunicorn's default path ($HOME/.gunicorn/gunicorn.ctl) is shared by every
    # instance of the user: a second server takes it over and the first one's
    # shutdown deletes it. A socket only where the path is this instance's own.
    explicit = os.environ.get("GUNICORN_CONTROL_SOCKET", "").strip()
    if explicit:
        return explicit
    runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return os.path.join(runtime, "gunicorn.ctl") if runtime else None


wsgi_app = "config.wsgi:application"
bind = [os.environ.get("GUNICORN_BIND", "").strip() or "127.0.0.1:8000"]
workers = _positive_int("GUNICORN_WORKERS", 2 * len(os.sched_getaffinity(0)) + 1)
timeout = _positive_int("GUNICORN_TIMEOUT", 30)
graceful_timeout = 30
proc_name = "academy"

# Logs to stdout/stderr, where systemd's journal (or a container runtime) takes them.
accesslog = "-"
errorlog = "-"
# The proxy's client address and the time taken (ms) on every line.
access_log_format = (
    '%({x-forwarded-for}i)s %(h)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms'
)

control_socket = _control_socket()
if control_socket is None:
    control_socket_disable = True
    del control_socket

# Heartbeat files on a RAM disk: a disk-backed /tmp can stall workers (gunicorn's docs).
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"


# The settings loaded once in a child process before the server listens
# (config/settings_probe.py): a refused setting stops gunicorn with its one line and
# exit 78, which the web unit does not restart into. Otherwise every worker prints the
# traceback as it fails to boot. A child, not this process: the master must not keep
# the settings file's values in its environment, or a reload (HUP) would hand the old
# ones to the new workers. It imports from this process's path (--pythonpath, --chdir).


def on_starting(server):
    probe = subprocess.run(
        [sys.executable, "-m", "config.settings_probe"],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)},
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        lines = probe.stderr.strip().splitlines()
        sys.stderr.write((lines[-1] if lines else f"settings exited {probe.returncode}") + "\n")
        sys.exit(probe.returncode)


def post_worker_init(worker):
    """The objects the worker has loaded (Django, the apps, their modules: some 75,000)
    are moved out of the garbage collector's reach: they live as long as the worker, yet
    each full collection walked them all. A batch of 1,000 events makes enough objects to
    start one every few batches: 11 ms of its 100 ms of Python, against 1 ms frozen
    (BENCHMARKS.md, "The HTTP API"). Python's documented use of ``gc.freeze``."""
    gc.collect()
    gc.freeze()
    worker.log.info(
        "Worker %s: %d objects frozen out of the collector", worker.pid, gc.get_freeze_count()
    )
