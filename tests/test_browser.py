"""A real browser (Debian's headless Chromium through Selenium) repairs the demo's desyncs.

Nothing is downloaded: the driver path is given, so Selenium Manager never runs. Without
Chromium the test skips, except in CI (CI=true), where it fails. Screenshots of the three
main pages go to tests/artifacts/ (or $SCREENSHOT_DIR: `SCREENSHOT_DIR=docs` refreshes
the pictures in docs/, the Hungarian one in docs/img/).
"""

import os
import shutil
from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import global_settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

from licenses import consistency
from licenses.models import UserLicense
from monitoring import services
from monitoring.management.commands.seed_demo import STAFF_PASSWORD, STAFF_USERNAME
from monitoring.models import HealthCheckRun

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / os.environ.get("SCREENSHOT_DIR", "tests/artifacts")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1600,1000",
    "--ignore-certificate-errors",  # the production variant's proxy has a throwaway certificate
]


def chromium(tmp_path, monkeypatch, *, language: str | None = None):
    """Headless Chromium with a fresh profile; ``language``: the browser's own (what it
    sends as Accept-Language), as a staff member has set it up."""
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        message = f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true: {message}")
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # never let Selenium Manager fetch anything
    options = Options()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    if language:
        options.add_argument(f"--lang={language}")
        options.add_experimental_option("prefs", {"intl.accept_languages": language})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


@pytest.fixture
def browser(tmp_path, monkeypatch):
    yield from chromium(tmp_path, monkeypatch)


@pytest.fixture
def hungarian_browser(tmp_path, monkeypatch):
    yield from chromium(tmp_path, monkeypatch, language="hu")


@pytest.fixture(params=["live_server", "production"])
def site_url(request, settings):
    """Django's live server, or the production stack: nginx's sample site over TLS in front
    of gunicorn (tests/production.py), with DEBUG off and the collected static files."""
    if request.param == "live_server":
        server = request.getfixturevalue("live_server")
        # What pytest-django does for a test that names live_server itself.
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, urlsplit(server.url).hostname]
        return server.url
    if connection.vendor != "postgresql":
        pytest.skip("the SQLite test database is in memory, out of gunicorn's reach")
    # seed_demo's password must be one the production server's hashers can check.
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS
    return request.getfixturevalue("production_proxy").https_url


def screenshot(driver, name: str, *, into: Path = SCREENSHOTS) -> Path:
    """A full-page PNG: the window grows to the page's height first."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1600, max(1000, min(height + 150, 2400)))
    path = into / name
    path.parent.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(path))
    driver.set_window_size(1600, 1000)
    return path


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG file, read from its header; fails on anything else."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", path
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def click_and_wait(driver, element) -> None:
    """Click, then wait until the browser has left the page (a click does not wait)."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element("tag name", "html")
    element.click()

    def left(_) -> bool:
        try:
            page.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            # Chromium reports a node of the page being left this way too, mid-navigation.
            if "does not belong to the document" in str(error):
                return True
            raise
        return False

    WebDriverWait(driver, 10).until(left)


def test_staff_repairs_the_demo_desyncs_in_a_real_browser(
    committed_db, site_url, browser, settings
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False  # plain http here
    call_command("seed_demo", "--force", stdout=StringIO())
    for _ in range(3):
        services.run_health_check()
    runs_before = HealthCheckRun.objects.count()

    browser.get(f"{site_url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys(STAFF_USERNAME)
    browser.find_element(By.NAME, "password").send_keys(STAFF_PASSWORD)
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "input[type=submit]"))
    assert "Site administration" in browser.title

    browser.get(f"{site_url}/admin/monitoring/desynccase/")
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == 9
    page = browser.page_source
    for label in ("level mismatch", "missing licence", "missing progress"):
        assert page.count(label) >= 3
    screenshot(browser, "desync-cases.png")

    for checkbox in browser.find_elements(By.CSS_SELECTOR, "input.action-select"):
        checkbox.click()
    assert "9 of 9 selected" in browser.find_element(By.CSS_SELECTOR, ".action-counter").text
    Select(browser.find_element(By.NAME, "action")).select_by_value("repair_selected")
    click_and_wait(browser, browser.find_element(By.NAME, "index"))
    assert "Repair 9 desync cases?" in browser.page_source
    browser.find_element(By.ID, "id_reason").send_keys("demo clean-up")
    click_and_wait(browser, browser.find_element(By.ID, "confirm-repair"))

    message = browser.find_element(By.CSS_SELECTOR, "ul.messagelist li.success").text
    assert message.startswith("Repaired 9 desync case(s)")
    assert browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr") == []
    assert consistency.count_pairs().inconsistent == 0

    browser.get(f"{site_url}/admin/monitoring/healthcheckrun/")
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    assert len(rows) == runs_before + 1
    assert "Healthy" in rows[0].text and "Degraded" in rows[1].text
    click_and_wait(browser, browser.find_element(By.ID, "run-check"))
    assert "Check recorded: healthy" in browser.find_element(By.CSS_SELECTOR, ".messagelist").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#sync-trend svg circle")) == runs_before + 2
    screenshot(browser, "health-check-runs.png")

    repaired = UserLicense.objects.filter(progressions__reason="demo clean-up").first()
    browser.get(f"{site_url}/admin/licenses/userlicense/{repaired.pk}/change/")
    assert "demo clean-up" in browser.page_source
    screenshot(browser, "licence-history.png")


def test_a_select_all_repair_of_thousands_runs_as_a_job_and_its_page_follows_it_to_done(
    committed_db, live_server, browser, settings, tmp_path
):
    """Select all across pages, confirm, land on the run's page while no worker runs yet,
    start the real worker (deploy/academy-worker.service's db_worker), and watch the page
    turn to "Done" by itself (its script polls the progress JSON and reloads)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from tests.factories import bulk_mismatched_pairs
    from tests.production import database_url, start_worker, stop

    if connection.vendor != "postgresql":
        pytest.skip("the SQLite test database is in memory, out of the worker process's reach")
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, urlsplit(live_server.url).hostname]
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False  # plain http here
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    get_user_model().objects.create_user(
        "incident", password="incident-pass-1", is_staff=True, is_superuser=True
    )
    cases = bulk_mismatched_pairs(3000, prefix="restored")

    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("incident")
    browser.find_element(By.NAME, "password").send_keys("incident-pass-1")
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "input[type=submit]"))
    browser.get(f"{live_server.url}/admin/monitoring/desynccase/")
    browser.find_element(By.ID, "action-toggle").click()
    browser.find_element(By.CSS_SELECTOR, ".actions .question a").click()
    assert browser.find_element(By.CSS_SELECTOR, ".actions .all").text == f"All {cases} selected"
    Select(browser.find_element(By.NAME, "action")).select_by_value("repair_selected")
    click_and_wait(browser, browser.find_element(By.NAME, "index"))
    assert f"Repair {cases} desync cases?" in browser.page_source
    assert browser.find_element(By.ID, "repair-in-background").is_displayed()
    browser.find_element(By.ID, "id_reason").send_keys("restore of 1 December")
    click_and_wait(browser, browser.find_element(By.ID, "confirm-repair"))

    run = HealthCheckRun.objects.get()
    assert browser.current_url.endswith(f"/admin/monitoring/healthcheckrun/{run.pk}/change/")
    message = browser.find_element(By.ID, "run-progress-message")
    assert message.text.startswith("Waiting for a worker (queued since")
    assert consistency.count_pairs().inconsistent == cases  # nothing done in the request

    worker = start_worker(tmp_path / "worker", database_url=database_url(connection.settings_dict))
    try:

        def finished(driver):
            # The page reloads itself once the run has finished; until then it polls.
            panel = driver.find_elements(By.CSS_SELECTOR, "#run-progress[data-finished='1']")
            return panel[0] if panel else False

        WebDriverWait(browser, 90, poll_frequency=0.2).until(finished)
    finally:
        stop(worker.process)
    outcome = browser.find_element(By.ID, "run-progress-message").text
    assert outcome.startswith(f"Done: repaired {cases:,}, 0 already in sync. Check after: healthy")
    assert browser.find_element(By.ID, "run-progress-done").text == f"{cases:,} of {cases:,}"
    assert browser.find_element(By.ID, "run-progress-state").text == "Done"
    screenshot(browser, "repair-progress.png")
    assert consistency.count_pairs().inconsistent == 0
    assert UserLicense.objects.filter(progressions__reason="restore of 1 December").count() == (
        cases
    )


def test_a_staff_member_whose_browser_asks_for_hungarian_gets_the_admin_in_hungarian(
    committed_db, live_server, hungarian_browser, settings, tmp_path
):
    """The README's Hungarian screenshot (docs/img/admin-hu.png, refreshed with
    SCREENSHOT_DIR=docs): the demo's desync cases, as a Hungarian staff member sees them."""
    from selenium.webdriver.common.by import By

    from tests.hungarian_pages import english_left

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, urlsplit(live_server.url).hostname]
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = False  # plain http here
    call_command("seed_demo", "--force", stdout=StringIO())
    services.run_health_check()
    browser = hungarian_browser

    browser.get(f"{live_server.url}/admin/login/")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "hu"
    browser.find_element(By.NAME, "username").send_keys(STAFF_USERNAME)
    browser.find_element(By.NAME, "password").send_keys(STAFF_PASSWORD)
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "input[type=submit]"))

    browser.get(f"{live_server.url}/admin/monitoring/desynccase/")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "hu"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")) == 9
    page = browser.page_source
    # The product's catalogue in Hungarian, its English msgids nowhere.
    assert "Eltérések (élő)" in page and "Desync cases (live)" not in page
    assert "A kiválasztott eltérések javítása" in page
    assert "Repair selected desync cases" not in page
    for label in ("szinteltérés", "hiányzó licenc", "hiányzó haladás"):
        assert page.count(label) >= 3, label
    assert english_left(page) == []

    shot = screenshot(browser, "admin-hu.png", into=tmp_path)
    width, height = png_size(shot)
    assert width >= 1200 and 600 <= height <= 3000, (width, height)
    assert 20_000 < shot.stat().st_size < 5_000_000
    target = SCREENSHOTS / "img" / "admin-hu.png"  # SCREENSHOT_DIR=docs: the README's
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, target)
