"""Configuration from the environment, as an operator starts the product."""

from tests.conftest import manage as manage_with_a_key
from tests.conftest import once_per_suite

pytestmark = once_per_suite


def manage(*args, **env):
    # No secret key and no host unless the test names them.
    return manage_with_a_key(*args, **{"SECRET_KEY": "", "ALLOWED_HOSTS": "", **env})


def test_missing_secret_key_without_debug_fails_with_one_line_naming_it():
    result = manage("check", DATABASE_URL="sqlite:///:memory:")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Configuration error: SECRET_KEY is not set: export SECRET_KEY "
        "(or set DEBUG=1 for local development)."
    ]


def test_deploy_check_warns_when_the_database_is_the_embedded_default(tmp_path):
    secret = "x" * 20 + "-production-like-secret-key-with-enough-entropy-1234567890"
    env = {"SECRET_KEY": secret, "ALLOWED_HOSTS": "academy.example.org"}
    unset = manage("check", "--deploy", "--fail-level", "ERROR", DATABASE_URL="", **env)
    assert unset.returncode == 0, unset.stderr
    assert "?: (monitoring.W002) DATABASE_URL is not set: the database is the embedded" in (
        unset.stderr
    )
    # Named in the settings file (an empty variable in the environment does not hide it).
    env_file = tmp_path / "env"
    env_file.write_text(f"DATABASE_URL=sqlite:///{tmp_path / 'db.sqlite3'}\n")
    named = manage(
        "check", "--deploy", "--fail-level", "ERROR",
        **{**env, "DATABASE_URL": "", "ACADEMY_ENV_FILE": str(env_file)},
    )  # fmt: skip
    assert named.returncode == 0, named.stderr
    assert "monitoring.W002" not in named.stderr


def test_debug_runs_without_a_secret_key():
    result = manage("check", DEBUG="1", DATABASE_URL="sqlite:///:memory:")
    assert result.returncode == 0, result.stderr


def test_deploy_check_reports_only_the_accepted_warning():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "ERROR",
        SECRET_KEY="x" * 20 + "-production-like-secret-key-with-enough-entropy-1234567890",
        ALLOWED_HOSTS="academy.example.org",
        DATABASE_URL="sqlite:///:memory:",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    reported = [line.split(")")[0] + ")" for line in lines if line.startswith("?: (")]
    assert reported == ["?: (security.W021)"]  # HSTS preload is opt-in (docs/configuration.md)
