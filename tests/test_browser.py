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


_SNAPSHOT_JS = """
if (document.readyState !== "complete") { return null; }
const out = {};
for (const el of document.querySelectorAll("[id]")) {
  const attrs = {};
  for (const a of el.attributes) { attrs[a.name] = a.value; }
  out[el.id] = {text: el.innerText === undefined ? "" : el.innerText.trim(), attrs: attrs};
}
return {title: document.title, ids: out};
"""


class Page:
    """Every element with an id, read from one loaded document in one script call
    (the page refreshes itself, so separate lookups could straddle two documents)."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.title: str = raw["title"]
        self.ids: dict[str, Any] = raw["ids"]

    def attr(self, element_id: str, name: str) -> str:
        if element_id not in self.ids:
            return "<absent>"
        return str(self.ids[element_id]["attrs"].get(name, ""))

    def text(self, element_id: str) -> str:
        if element_id not in self.ids:
            return "<absent>"
        return str(self.ids[element_id]["text"])


def _snapshot(browser: Any) -> Page | None:
    from selenium.common.exceptions import WebDriverException

    try:
        raw = browser.execute_script(_SNAPSHOT_JS)
    except WebDriverException:  # navigating: the next poll reads the new document
        return None
    return Page(raw) if raw else None


def _wait(browser: Any, what: str, predicate: Any) -> Page:
    """Wait (bounded) while the page refreshes itself; no reloads by the test.
    Returns the snapshot that satisfied ``predicate``."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    def check(b: Any) -> Page | bool:
        page = _snapshot(b)
        return page if page is not None and predicate(page) else False

    try:
        page: Page = WebDriverWait(browser, WAIT, poll_frequency=0.1).until(check)
    except TimeoutException:
        raise AssertionError(f"page never showed: {what}") from None
    return page


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
        page = _wait(driver, "the status page", lambda p: "browser-run" in p.title)
        # A fresh run: no climate timestamp, climate served from the warm cache.
        assert page.attr("ts-build_climate", "data-ts") == ""
        assert page.attr("source-climate", "data-source") == "cache"
        assert page.attr("state-climate", "data-revision") == "0"
        assert page.attr("autorefresh", "content") == "<absent>"

        # Hold the job between its work and its timestamp, then click.
        jobs.hold(wd, "build_climate")
        try:
            _click(driver, "btn-build_climate")
            assert jobs.wait_reached(wd, "build_climate", timeout=WAIT)
            # The job has rewritten climate.nodb but not finished: the page keeps
            # refreshing and shows the stale cached copy next to the new file.
            # (One render reads the job status before the files: under load the job
            # can start between the two reads, so wait for a render that saw both.)
            page = _wait(
                driver,
                "climate file rev 1 while the job runs",
                lambda p: (
                    p.attr("disk-climate", "data-revision") == "1"
                    and p.text("jobstatus-build_climate_rq") == "running"
                ),
            )
            assert page.attr("source-climate", "data-source") == "cache"
            assert page.attr("state-climate", "data-revision") == "0"
            assert "stale" in page.text("source-climate")
            assert page.text("jobstatus-build_climate_rq") == "running"
            assert page.attr("autorefresh", "content").startswith("1; url=")
            assert page.attr("ts-build_climate", "data-ts") == ""
            assert r13.exists(climate_key)  # nothing invalidated at start
        finally:
            jobs.release(wd, "build_climate")

        # Completion: the page (refreshing itself) shows the job finished, the new
        # timestamp and the new state, read from file after the invalidation.
        page = _wait(
            driver,
            "build_climate_rq finished",
            lambda p: p.text("jobstatus-build_climate_rq") == "finished",
        )
        stamped = r0.hget("browser-run", "timestamps:build_climate")
        assert stamped is not None
        assert page.attr("ts-build_climate", "data-ts") == stamped
        assert page.text("job-build_climate") == "finished"
        assert page.attr("source-climate", "data-source") == "file"
        assert page.text("source-climate") == "read from file"
        assert page.attr("state-climate", "data-revision") == "1"
        assert '"built_by": "build_climate"' in page.text("state-climate")
        assert _nodb_revision(wd, "climate") == 1
        assert not r13.exists(climate_key)
        # Controllers outside the rules' cascade are still served from cache.
        assert page.attr("source-topaz", "data-source") == "cache"
        assert page.attr("autorefresh", "content") == "<absent>"
        shot = os.environ.get("REDISPREP_SCREENSHOT")
        if shot:
            driver.save_screenshot(shot)

        # ... then run WEPP: its timestamps appear and wepp is read fresh from file.
        _click(driver, "btn-run_wepp")
        page = _wait(
            driver,
            "run_wepp_rq finished",
            lambda p: p.text("jobstatus-run_wepp_rq") == "finished",
        )
        for task in ("run_wepp_hillslopes", "run_wepp_watershed"):
            stamp = r0.hget("browser-run", f"timestamps:{task}")
            assert stamp is not None
            assert page.attr(f"ts-{task}", "data-ts") == stamp
        assert page.attr("source-wepp", "data-source") == "file"
        assert page.attr("state-wepp", "data-revision") == "1"
        assert _nodb_revision(wd, "wepp") == 1
        # The climate build is still shown as done.
        assert page.attr("ts-build_climate", "data-ts") == stamped
