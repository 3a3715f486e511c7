"""`faultbed serve` in a real browser: headless Chromium lists real runs and opens their reports.

Needs Debian's chromium, chromium-driver and python3-selenium. Screenshots of the
listing and of a report are kept in the test's tmp dir (path printed) so a person
can look at them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, STALE_READS, short_run
from tests.e2e.synthetic_runs import make_run

from selenium import webdriver  # python3-selenium, installed by scripts/setup: missing fails, never skips

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("serve-store")]  # its runs made once


def test_chromium_and_its_driver_are_installed():
    assert CHROMIUM and CHROMEDRIVER, "chromium and chromium-driver missing: run scripts/setup"

GREEN, RED, YELLOW = "rgba(223, 243, 227, 1)", "rgba(249, 214, 213, 1)", "rgba(255, 243, 196, 1)"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two real runs (valid, then INVALID with a planted bug) and a newer one without a verdict."""
    root = str(tmp_path_factory.mktemp("serve-store"))
    valid = short_run(root, "--nemesis", "partition", expect_exit=0)
    invalid = short_run(root, *STALE_READS, expect_exit=1)
    unfinished = make_run(root, "29991231T235959Z", valid=None)
    return {"root": root, "valid": valid, "invalid": invalid, "unfinished": unfinished}


@pytest.fixture(scope="module")
def server_url(store: dict[str, str]):
    proc = subprocess.Popen([sys.executable, "-m", "faultbed", "serve", "--store", store["root"], "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
        assert match, f"serve said: {line!r} {proc.stderr.read() if proc.poll() is not None else ''}"
        yield match.group(1)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")  # else chromium leaves one in /tmp per run
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1200,1000", f"--user-data-dir={profile}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = Path(os.environ.get("FAULTBED_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    print(f"screenshots in {path}")
    return path


def relative(store: dict[str, str], key: str) -> str:
    return os.path.relpath(store[key], store["root"])


def test_listing_shows_runs_newest_first_in_their_verdicts_colors(browser, server_url, store, screenshots):
    from selenium.webdriver.common.by import By

    browser.get(server_url + "/")
    rows = browser.find_elements(By.CSS_SELECTOR, "tr.run")
    names = [row.find_element(By.TAG_NAME, "a").text for row in rows]
    assert names == [relative(store, "unfinished"), relative(store, "invalid"), relative(store, "valid")]
    colors = [row.value_of_css_property("background-color") for row in rows]
    assert colors == [YELLOW, RED, GREEN]
    assert [row.find_element(By.CSS_SELECTOR, "td.verdict").text for row in rows] == ["no verdict", "INVALID",
                                                                                       "valid"]
    browser.save_screenshot(str(screenshots / "listing.png"))


def test_invalid_run_opens_a_report_with_plots_verdicts_faults_and_porcupine(browser, server_url, store,
                                                                              screenshots):
    from selenium.webdriver.common.by import By

    browser.get(server_url + "/")
    browser.find_element(By.LINK_TEXT, relative(store, "invalid")).click()
    assert browser.current_url.endswith("/report.html")
    assert browser.find_element(By.CSS_SELECTOR, "#verdict .badge").text == "INVALID"
    verdicts = {row.find_elements(By.TAG_NAME, "td")[0].text: row.get_attribute("class")
                for row in browser.find_elements(By.CSS_SELECTOR, "tr.checker")}
    assert verdicts == {"linearizable": "checker invalid", "raft-invariants": "checker valid", "stats": "checker valid"}
    widths = browser.execute_script(
        "return Array.from(document.querySelectorAll('img.plot')).map(i => [i.id, i.naturalWidth])")
    assert widths == [["latency-plot", 1000], ["throughput-plot", 1000]]
    faults = [row.find_elements(By.TAG_NAME, "td")[0].text
              for row in browser.find_elements(By.CSS_SELECTOR, "#faults tr")[1:]]
    assert "partition-isolate" in faults  # the invalid run isolates one node at a time
    assert browser.find_elements(By.CSS_SELECTOR, "#logs a[href='nodes/n1.log']")
    browser.set_window_size(1200, 2400)
    browser.save_screenshot(str(screenshots / "report-invalid.png"))
    browser.set_window_size(1200, 1000)
    browser.find_element(By.ID, "porcupine-link").click()
    assert browser.current_url.endswith("/linearizability.html")
    assert "porcupine" in browser.page_source.lower() or browser.find_elements(By.TAG_NAME, "svg")


def test_valid_run_report_shows_valid_and_opens_a_node_log(browser, server_url, store):
    from selenium.webdriver.common.by import By

    browser.get(f"{server_url}/runs/{relative(store, 'valid')}/")
    assert browser.current_url.endswith("/report.html")
    assert browser.find_element(By.CSS_SELECTOR, "#verdict .badge").text == "valid"
    assert not browser.find_elements(By.ID, "porcupine-link")
    browser.find_element(By.CSS_SELECTOR, "#logs a[href='nodes/n1.log']").click()
    assert browser.current_url.endswith("/nodes/n1.log")
    assert browser.find_element(By.TAG_NAME, "body").text.strip()


def test_a_path_out_of_the_store_is_not_served_to_the_browser(browser, server_url):
    browser.get(server_url + "/runs/%2e%2e/%2e%2e/%2e%2e/etc/passwd")
    assert "root:" not in browser.page_source
