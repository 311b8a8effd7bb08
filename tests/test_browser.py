"""The run status page in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by selenium), served by the real demo process
(``python -m redisprep demo``: private Redis, forking RQ worker, Flask).

A person opens the page of a fresh run, clicks "Abstract watershed" and "Warm
caches", then "Build climate" and watches: while the job runs the page follows
it in place and the climate row still shows the stale cached copy (the job has
already rewritten the file); when the job finishes its ``timestamp()`` has
deleted the cache keys and published the invalidation event: within 2 s the
"Invalidations" feed shows it (every key, why, how many were present), the
climate preflight pill turns from the event's checklist and the rows of the
deleted keys say "read from file" — without a reload. Then "Run WEPP". With
``--no-events`` the feed says events are off and how to turn them on.

``REDISPREP_SCREENSHOT=docs/status_page.png`` also saves the page after the
build-climate round (that is how the README's screenshot is made).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from redisprep import Rules
from redisprep._demo import jobs
from support.demo_proc import DemoProcess
from support.integration import closure_gone

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
const top = document.querySelector("#feed > li.inv");
const keys = top ? Array.from(top.querySelectorAll("li[data-key]"),
  li => [li.dataset.key, li.querySelector(".why").textContent]) : [];
return {title: document.title, ids: out, feed: top ? top.id : null, feed_keys: keys,
        marker: window.__sameDocument === undefined ? null : window.__sameDocument};
"""


class Page:
    """Every element with an id, read from one loaded document in one script call
    (parts of the page are replaced in place, so separate lookups could straddle
    two versions). ``feed`` is the id of the newest feed entry; ``marker`` the
    value the test left on ``window`` (gone after a reload)."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.title: str = raw["title"]
        self.ids: dict[str, Any] = raw["ids"]
        self.feed: str | None = raw["feed"]
        self.feed_keys: dict[str, str] = dict(raw["feed_keys"])  # newest entry: key -> why
        self.marker: Any = raw["marker"]

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
    """Wait (bounded) while the page updates itself; no reloads by the test.
    Returns the snapshot that satisfied ``predicate``."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    def check(b: Any) -> Page | bool:
        page = _snapshot(b)
        return page if page is not None and predicate(page) else False

    try:
        page: Page = WebDriverWait(browser, WAIT, poll_frequency=0.05).until(check)
    except TimeoutException:
        raise AssertionError(f"page never showed: {what}") from None
    return page


def _click(browser: Any, button_id: str) -> None:
    """Click a button: the page posts its form in the background and updates in place."""
    browser.find_element("id", button_id).click()


def _nodb_revision(wd: str, name: str) -> int:
    return int(json.loads(Path(wd, f"{name}.nodb").read_text())["revision"])


def _ended_at(redis_url: str, job_id: str) -> float:
    """When RQ recorded the job as ended (its ``timestamp()`` ran just before)."""
    from rq.job import Job

    from redisprep._demo.app import rq_connection

    conn = rq_connection(redis_url)
    try:
        ended = Job.fetch(job_id, connection=conn).ended_at
    finally:
        conn.close()
    assert ended is not None
    if ended.tzinfo is None:  # rq 1.x: naive UTC
        ended = ended.replace(tzinfo=datetime.timezone.utc)
    return ended.timestamp()


def test_build_climate_live_in_chromium(
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
        page = _wait(
            driver,
            "the live feed connected",
            lambda p: p.attr("feed-status", "data-state") == "live",
        )
        assert "browser-run" in page.title
        # A fresh run: no climate timestamp, climate served from the warm cache.
        assert page.attr("ts-build_climate", "data-ts") == ""
        assert page.attr("source-climate", "data-source") == "cache"
        assert page.attr("state-climate", "data-revision") == "0"
        assert page.attr("live", "data-pending") == "false"
        assert page.feed is None and "No invalidation since" in page.text("feed")
        driver.execute_script("window.__sameDocument = 42;")  # gone if the page reloads

        # Abstract the watershed first (climate's check needs it), then warm the caches.
        _click(driver, "btn-abstract_watershed")
        page = _wait(
            driver,
            "the abstract_watershed event",
            lambda p: p.feed is not None and (p.attr(p.feed, "data-task") == "abstract_watershed"),
        )
        abstracted = int(r0.hget("browser-run", "timestamps:abstract_watershed") or 0)
        assert page.attr("check-climate", "data-ok") == "false"
        _click(driver, "btn-warm_caches")
        _wait(
            driver,
            "caches warmed",
            lambda p: (
                p.attr("source-climate", "data-source") == "cache"
                and p.text("msg") == "caches warmed"
            ),
        )
        while int(time.time()) <= abstracted:  # build_climate must be newer (whole seconds)
            time.sleep(0.05)

        # Hold the job between its work and its timestamp, then click.
        jobs.hold(wd, "build_climate")
        try:
            _click(driver, "btn-build_climate")
            assert jobs.wait_reached(wd, "build_climate", timeout=WAIT)
            # The job has rewritten climate.nodb but not finished: the page keeps
            # re-reading itself and shows the stale cached copy next to the new file.
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
            assert page.attr("live", "data-pending") == "true"
            assert page.attr("ts-build_climate", "data-ts") == ""
            assert page.attr(page.feed or "", "data-task") == "abstract_watershed"
            assert r13.exists(climate_key)  # nothing invalidated at start
        finally:
            jobs.release(wd, "build_climate")

        # Completion: the event shows in the feed, the climate pill turns, the rows
        # of the deleted keys say "read from file" — all without a reload.
        page = _wait(
            driver,
            "the build_climate event in the feed",
            lambda p: p.feed is not None and p.attr(p.feed, "data-task") == "build_climate",
        )
        shown_at = time.time()
        job_id = r0.hget("browser-run", "rq:build_climate_rq")
        assert job_id is not None
        assert shown_at - _ended_at(redis_url, job_id) <= 2.0
        entry = page.text(page.feed)
        assert "☁️ Build Climate" in entry
        assert page.feed_keys[climate_key] == "direct"
        rap_ts = os.path.join(wd, "rap_ts.nodb")
        assert page.feed_keys[rap_ts] == "via cascade from build_climate → build_rap_ts"
        # Listed: the keys that were present = the run's controllers in the closure.
        gone = closure_gone("build_climate")
        assert set(page.feed_keys) == {os.path.join(wd, f"{c}.nodb") for c in gone}
        named = len(Rules.load().keys_for("build_climate", wd))
        assert page.attr(page.feed, "data-present") == str(len(gone))
        assert page.attr(page.feed, "data-named") == str(named)
        assert f"{len(gone)} of {named} keys named by the rules were present" in entry
        assert page.attr("check-climate", "data-ok") == "true"
        assert page.attr("check-climate", "data-by") == "event"
        assert page.attr("source-climate", "data-source") == "file"
        assert page.marker == 42, "the page reloaded"

        page = _wait(
            driver,
            "build_climate_rq finished",
            lambda p: p.text("jobstatus-build_climate_rq") == "finished",
        )
        stamped = r0.hget("browser-run", "timestamps:build_climate")
        assert stamped is not None
        assert page.attr("ts-build_climate", "data-ts") == stamped
        assert page.text("job-build_climate") == "finished"
        assert page.text("source-climate") == "read from file"
        assert page.attr("state-climate", "data-revision") == "1"
        assert '"built_by": "build_climate"' in page.text("state-climate")
        assert _nodb_revision(wd, "climate") == 1
        assert not r13.exists(climate_key)
        # Controllers outside the rules' cascade are still served from cache.
        assert page.attr("source-topaz", "data-source") == "cache"
        assert page.attr("live", "data-pending") == "false"
        assert page.marker == 42, "the page reloaded"
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
        page = _wait(
            driver,
            "wepp read from file",
            lambda p: (
                p.attr("source-wepp", "data-source") == "file"
                and p.attr("state-wepp", "data-revision") == "1"
            ),
        )
        assert _nodb_revision(wd, "wepp") == 1
        # The climate build is still shown as done; both events are in the feed.
        assert page.attr("ts-build_climate", "data-ts") == stamped
        assert page.attr(page.feed or "", "data-task") == "run_wepp_watershed"
        assert page.marker == 42


def test_feed_says_events_are_off_in_chromium(driver: Any, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    proc = DemoProcess(["--runs-root", str(runs), "--runid", "off-run", "--no-events"])
    try:
        url = proc.wait_for("==> status page:")
        assert "invalidation events off" in proc.output()
        with screenshot_on_failure(driver, tmp_path):
            driver.get(url)
            page = _wait(driver, "the status page", lambda p: "off-run" in p.title)
            assert page.attr("feed-status", "data-state") == "off"
            assert "Invalidation events are off" in page.text("feed-status")
            assert "REDISPREP_EVENTS=true" in page.text("feed-status")
            # The rest of the page works: a job runs and the page follows it in place.
            driver.execute_script("window.__sameDocument = 7;")
            _click(driver, "btn-build_climate")
            page = _wait(
                driver,
                "build_climate_rq finished",
                lambda p: p.text("jobstatus-build_climate_rq") == "finished",
            )
            page = _wait(
                driver,
                "climate read from file",
                lambda p: p.attr("source-climate", "data-source") == "file",
            )
            assert page.feed is None and page.marker == 7
    finally:
        assert proc.interrupt() == 0, proc.output()
