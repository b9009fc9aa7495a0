"""A real browser (Debian's headless Chromium through Selenium) repairs the demo's desyncs.

Nothing is downloaded: the driver path is given, so Selenium Manager never runs. Without
Chromium the test skips, except in CI (CI=true), where it fails. Screenshots of the three
main pages go to tests/artifacts/ (or $SCREENSHOT_DIR: `SCREENSHOT_DIR=docs` refreshes
the README's pictures).
"""

import os
import shutil
from io import StringIO
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import global_settings
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


@pytest.fixture
def browser(tmp_path, monkeypatch):
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
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


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


def screenshot(driver, name: str) -> None:
    """A full-page PNG: the window grows to the page's height first."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1600, max(1000, min(height + 150, 2400)))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / name))
    driver.set_window_size(1600, 1000)


def click_and_wait(driver, element) -> None:
    """Click, then wait until the browser has left the page (a click does not wait)."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element("tag name", "html")
    element.click()
    WebDriverWait(driver, 10).until(expected_conditions.staleness_of(page))


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
