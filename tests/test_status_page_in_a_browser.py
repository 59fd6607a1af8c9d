"""The status page in a real headless Chromium: it renders every job with its schedule in
words, next run, last outcome, paused state and source, escapes text from job files, and
reads on a phone-sized screen. Screenshots go to test-artifacts/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from tests.api_helpers import StartApi
from tests.conftest import WriteJobs
from tests.daemon_helpers import wait_for

ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
JOBS = """\
jobs:
  weekday-report:
    description: "Weekday report <script>document.title='pwned'</script>"
    schedule: {cron: "0 9 * * 1-5", timezone: Europe/Berlin}
    run: {type: command, command: "echo ok"}
  flaky:
    schedule: {interval: 1h}
    run: {type: command, command: ["false"]}
  held:
    schedule: {cron: "@daily"}
    run: {type: cleanup}
    paused: true
"""


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail(
            "Chromium is missing: `apt-get install chromium chromium-driver` "
            "(.ci/run installs them)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_status_page_shows_every_job(
    start_api: StartApi, write_jobs: WriteJobs, browser: webdriver.Chrome
) -> None:
    path = write_jobs("a.yaml", JOBS)
    daemon = start_api()
    with daemon.client() as api:
        api.post("/jobs/weekday-report/trigger")
        api.post("/jobs/flaky/trigger")
        wait_for(
            lambda: (
                len([r for r in api.get("/jobs/flaky/runs").json() if r["finished_at"]])
                + len([r for r in api.get("/jobs/weekday-report/runs").json() if r["finished_at"]])
                == 2
                or None
            ),
            "two runs",
        )
    browser.set_window_size(1280, 900)
    browser.get(daemon.base_url + "/")
    assert browser.title == "scheduler · 3 job(s)"  # the description's script never ran
    rows = {
        row.get_attribute("id"): row.text
        for row in browser.find_elements(By.CSS_SELECTOR, "tbody tr")
    }
    report = rows["job-weekday-report"]
    assert "At 09:00, Monday through Friday (Europe/Berlin)" in report
    assert "Weekday report <script>document.title='pwned'</script>" in report  # shown as text
    assert "success" in report and f"{path}:2" in report
    assert "failure" in rows["job-flaky"] and "Every 1h" in rows["job-flaky"]
    assert "paused (file)" in rows["job-held"]
    strip = browser.find_elements(By.CSS_SELECTOR, "#job-flaky .strip span")
    assert [s.get_attribute("class") for s in strip] == ["outcome-failure"]
    color = strip[0].value_of_css_property("background-color")
    assert color == "rgba(214, 69, 69, 1)"  # failures are red
    assert "3 added" in browser.find_element(By.ID, "last-reconcile").text
    refresh = browser.find_element(By.CSS_SELECTOR, "meta[http-equiv=refresh]")
    assert refresh.get_attribute("content") == "15"
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "status-page.png"))

    browser.set_window_size(390, 844)  # a phone
    browser.get(daemon.base_url + "/")
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= 390, "the page scrolls sideways on a phone"
    browser.save_screenshot(str(ARTIFACTS / "status-page-phone.png"))
