"""The page of one job in a real headless Chromium: the job as its file declares it with
file:line, its next 10 fire times, its runs with outcome, duration, try and output, and an
SVG duration chart. Output is shown as text: a <script> in it never runs, ANSI escapes and
bytes that are not UTF-8 appear as visible characters. The status page lists overdue jobs
first and links each job to its page. Screenshots go to test-artifacts/."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import httpx
from selenium import webdriver
from selenium.webdriver.common.by import By

from scheduler.store import Store
from tests.api_helpers import StartApi
from tests.conftest import RunCli, WriteJobs
from tests.daemon_helpers import wait_for
from tests.test_status_page_in_a_browser import ARTIFACTS, browser

__all__ = ["browser"]  # the fixture, shared with the status page's test

JOBS = r"""
jobs:
  report:
    description: Nightly report
    schedule: {cron: "30 2 * * *", timezone: Europe/Berlin}
    run:
      type: command
      command:
        - sh
        - -c
        - printf '<script>document.title=1</script> \033[31mred\033[0m \377\376 end'
    retries: {attempts: 1, backoff: 1s}
  zz-late:
    schedule: {interval: 1h}
    run: {type: command, command: ["true"]}
    expect: {succeeds_within: 2h}
"""


def seed_an_old_success(db_url: str, job_id: str) -> None:
    store = Store(db_url)
    at = time.time() - 86400
    with store.write() as conn:
        conn.execute(
            store.runs.insert(),
            {
                "run_id": "old",
                "job_id": job_id,
                "scheduled_time": at,
                "started_at": at,
                "finished_at": at + 2,
                "outcome": "success",
                "exit_code": 0,
                "attempt": 1,
                "output_tail": "",
                "error": None,
            },
        )
    store.close()


def test_job_page_shows_runs_as_text(
    start_api: StartApi,
    write_jobs: WriteJobs,
    run_cli: RunCli,
    db_url: str,
    browser: webdriver.Chrome,
) -> None:
    path = write_jobs("a.yaml", JOBS)
    assert run_cli("reconcile").exit_code == 0
    seed_an_old_success(db_url, "zz-late")
    daemon = start_api()
    with daemon.client() as api:
        for count in (1, 2):
            api.post("/jobs/report/trigger")
            wait_for(
                lambda n=count: (
                    len([r for r in api.get("/jobs/report/runs").json() if r["finished_at"]]) == n
                ),
                f"{count} run(s) of report",
            )
        assert api.get("/jobs/report").json()["spec"]["retries"]["attempts"] == 1  # JSON
        html = api.get("/jobs/report", headers={"Accept": "text/html,*/*;q=0.8"})
        assert html.headers["content-type"].startswith("text/html")
        assert '<h1 id="job-id">report</h1>' in html.text
        assert api.get("/ui/jobs/nope").status_code == 404
        late_next = datetime.fromisoformat(api.get("/jobs/zz-late").json()["next_run_time"])

    browser.set_window_size(1280, 1500)  # tall enough for the chart and the runs
    browser.get(daemon.base_url + "/")
    rows = browser.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert rows[0].get_attribute("id") == "job-zz-late"  # overdue first, not alphabetical
    assert "overdue" in rows[0].find_element(By.CSS_SELECTOR, ".badge.overdue").text
    browser.find_element(By.LINK_TEXT, "report").click()

    assert browser.current_url == daemon.base_url + "/ui/jobs/report"
    assert browser.title == "report · scheduler"  # the script in the output never ran
    assert f"{path}:2" in browser.find_element(By.ID, "source").text
    declared = browser.find_element(By.ID, "spec").text
    assert "report:\n  description: Nightly report" in declared
    assert "retries: {attempts: 1, backoff: 1s}" in declared
    fires = browser.find_elements(By.CSS_SELECTOR, "#next li")
    assert len(fires) == 10
    assert all(f.text.endswith(("02:30:00+01:00", "02:30:00+02:00")) for f in fires)
    runs = browser.find_elements(By.CSS_SELECTOR, "#runs tr.run")
    assert len(runs) == 2
    assert "success" in runs[0].text and " s" in runs[0].text
    output = runs[0].find_element(By.CSS_SELECTOR, "pre.output").text
    assert output.startswith("<script>document.title=1</script> \\x1b[31mred\\x1b[0m ")
    assert output.endswith(" \ufffd\ufffd end")  # the two bytes that are not UTF-8
    bars = browser.find_elements(By.CSS_SELECTOR, "#chart svg rect")
    assert [b.get_attribute("class") for b in bars] == ["outcome-success"] * 2
    assert float(bars[0].get_attribute("height") or 0) > 0
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "job-page.png"))

    browser.get(daemon.base_url + "/ui/jobs/zz-late")
    assert "Overdue: no success within 2h" in browser.find_element(By.ID, "overdue").text
    # an interval counts from the stored next run, as the scheduler will fire it
    expected = [
        (late_next + timedelta(hours=i)).isoformat(sep=" ", timespec="seconds") for i in range(10)
    ]
    assert [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#next li")] == expected

    browser.set_window_size(390, 844)  # a phone
    browser.get(daemon.base_url + "/ui/jobs/report")
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= 390, "the job page scrolls sideways on a phone"
    browser.save_screenshot(str(ARTIFACTS / "job-page-phone.png"))
    assert httpx.get(daemon.base_url + "/healthz").status_code == 200
