"""The run status page in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by selenium), served by the real demo process
(``python -m redisprep demo``: private Redis, forking RQ worker, Flask).

A person opens the page of a fresh run, clicks "Build climate" and watches:
while the job runs the page refreshes itself and the climate row still shows
the stale cached copy (the job has already rewritten the file); when the job
finishes its ``timestamp()`` has deleted the cache key, so the page shows the
new timestamp and the new climate state read from file. Then "Run WEPP".

``REDISPREP_SCREENSHOT=docs/status_page.png`` also saves the page after the
build-climate round (that is how the README's screenshot is made).
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from redisprep._demo import jobs
from support.demo_proc import DemoProcess

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 45.0


def _require_chromium() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    if not missing:
        return
    reason = f"{', '.join(missing)} missing: apt-get install chromium chromium-driver"
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser test cannot run in CI: {reason} (script/setup installs them)")
    pytest.skip(reason)


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    _require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,1400",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    service = Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    browser = webdriver.Chrome(service=service, options=options)
    browser.set_page_load_timeout(30)
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[DemoProcess, str, str]]:
    """The demo on its own private Redis; yields (process, status URL, run folder)."""
    runs = tmp_path / "runs"
    proc = DemoProcess(["--runs-root", str(runs), "--runid", "browser-run"])
    try:
        url = proc.wait_for("==> status page:")
        yield proc, url, str(runs / "browser-run")
    finally:
        code = proc.interrupt()
        # A clean Ctrl-C: worker and Redis stopped, exit 0.
        assert code == 0, proc.output()
        assert "==> stopped" in proc.output()


@contextlib.contextmanager
def screenshot_on_failure(browser: Any, folder: Path) -> Iterator[None]:
    try:
        yield
    except BaseException:
        path = folder / "failure.png"
        with contextlib.suppress(Exception):
            browser.save_screenshot(str(path))
            (folder / "failure.html").write_text(browser.page_source)
        print(f"screenshot of the failing page: {path}")
        raise


def _attr(browser: Any, element_id: str, attr: str) -> str:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    try:
        value = browser.find_element("id", element_id).get_attribute(attr)
    except (NoSuchElementException, StaleElementReferenceException):
        return "<absent>"
    return str(value) if value is not None else ""


def _text(browser: Any, element_id: str) -> str:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    try:
        return str(browser.find_element("id", element_id).text).strip()
    except (NoSuchElementException, StaleElementReferenceException):
        return "<absent>"


def _wait(browser: Any, what: str, predicate: Any) -> None:
    """Wait (bounded) while the page refreshes itself; no reloads by the test."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(browser, WAIT, poll_frequency=0.1).until(lambda b: predicate(b))
    except TimeoutException:
        raise AssertionError(f"page never showed: {what}") from None


def _click(browser: Any, button_id: str) -> None:
    """Click a form button and wait for the redirect back to the status page."""
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    button = browser.find_element("id", button_id)
    button.click()
    WebDriverWait(browser, WAIT).until(ec.staleness_of(button))


def _nodb_revision(wd: str, name: str) -> int:
    return int(json.loads(Path(wd, f"{name}.nodb").read_text())["revision"])


def test_build_climate_then_run_wepp_in_chromium(
    driver: Any, demo: tuple[DemoProcess, str, str], tmp_path: Path
) -> None:
    proc, url, wd = demo
    redis_url = proc.wait_for("Redis:")
    port = urllib.parse.urlsplit(redis_url).port
    r0 = redis.Redis(port=port, decode_responses=True)
    r13 = redis.Redis(port=port, db=13, decode_responses=True)
    climate_key = os.path.join(wd, "climate.nodb")

    with contextlib.closing(r0), contextlib.closing(r13), screenshot_on_failure(driver, tmp_path):
        driver.get(url)
        assert "browser-run" in driver.title
        # A fresh run: no climate timestamp, climate served from the warm cache.
        assert _attr(driver, "ts-build_climate", "data-ts") == ""
        assert _attr(driver, "source-climate", "data-source") == "cache"
        assert _attr(driver, "state-climate", "data-revision") == "0"
        assert _attr(driver, "autorefresh", "content") == "<absent>"

        # Hold the job between its work and its timestamp, then click.
        jobs.hold(wd, "build_climate")
        try:
            _click(driver, "btn-build_climate")
            assert jobs.wait_reached(wd, "build_climate", timeout=WAIT)
            # The job has rewritten climate.nodb but not finished: the page keeps
            # refreshing and shows the stale cached copy next to the new file.
            _wait(
                driver,
                "climate file rev 1 while the cache still serves rev 0",
                lambda b: _attr(b, "disk-climate", "data-revision") == "1",
            )
            assert _attr(driver, "source-climate", "data-source") == "cache"
            assert _attr(driver, "state-climate", "data-revision") == "0"
            assert "stale" in _text(driver, "source-climate")
            assert _text(driver, "jobstatus-build_climate_rq") == "started"
            assert _attr(driver, "autorefresh", "content").startswith("1; url=")
            assert _attr(driver, "ts-build_climate", "data-ts") == ""
            assert r13.exists(climate_key)  # nothing invalidated at start
        finally:
            jobs.release(wd, "build_climate")

        # Completion: the page (refreshing itself) shows the job finished, the new
        # timestamp and the new state, read from file after the invalidation.
        _wait(
            driver,
            "build_climate_rq finished",
            lambda b: _text(b, "jobstatus-build_climate_rq") == "finished",
        )
        stamped = r0.hget("browser-run", "timestamps:build_climate")
        assert stamped is not None
        assert _attr(driver, "ts-build_climate", "data-ts") == stamped
        assert _text(driver, "job-build_climate") == "finished"
        assert _attr(driver, "source-climate", "data-source") == "file"
        assert _text(driver, "source-climate") == "read from file"
        assert _attr(driver, "state-climate", "data-revision") == "1"
        assert '"built_by": "build_climate"' in _text(driver, "state-climate")
        assert _nodb_revision(wd, "climate") == 1
        assert not r13.exists(climate_key)
        # Controllers outside the rules' cascade are still served from cache.
        assert _attr(driver, "source-topaz", "data-source") == "cache"
        assert _attr(driver, "autorefresh", "content") == "<absent>"
        shot = os.environ.get("REDISPREP_SCREENSHOT")
        if shot:
            driver.save_screenshot(shot)

        # ... then run WEPP: its timestamps appear and wepp is read fresh from file.
        _click(driver, "btn-run_wepp")
        _wait(
            driver,
            "run_wepp_rq finished",
            lambda b: _text(b, "jobstatus-run_wepp_rq") == "finished",
        )
        for task in ("run_wepp_hillslopes", "run_wepp_watershed"):
            assert _attr(driver, f"ts-{task}", "data-ts") == r0.hget(
                "browser-run", f"timestamps:{task}"
            )
        assert _attr(driver, "source-wepp", "data-source") == "file"
        assert _attr(driver, "state-wepp", "data-revision") == "1"
        assert _nodb_revision(wd, "wepp") == 1
        # The climate build is still shown as done.
        assert _attr(driver, "ts-build_climate", "data-ts") == stamped
