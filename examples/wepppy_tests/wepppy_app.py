"""A small wepppy-shaped app for the example tests: NoDb-style controllers
cached in Redis DB 13, an RQ job that timestamps its task when it completes, and
a Flask rq_api endpoint that no longer calls ``prep.remove_timestamp()``."""

from __future__ import annotations

import json
import os
import urllib.parse
from typing import Any, Optional

import redis
from flask import Flask, jsonify
from rq import Queue

from redisprep import RedisPrep, TaskEnum

RUNS_ROOT = "/wc1/runs"  # wepppy's settings; the tests point them at their own
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CACHE_DB, CACHE_TTL = 13, 72 * 3600


def get_wd(runid: str) -> str:
    return os.path.join(RUNS_ROOT, runid)


class NoDbBase:
    """A controller: JSON state in ``<wd>/<filename>``, cached in DB 13 under that
    path for 72 hours, read from the file on a cache miss."""

    filename = "base.nodb"

    def __init__(self, wd: str, state: Optional[dict[str, Any]] = None) -> None:
        self.wd, self.state, self.source = wd, state or {}, "new"

    @property
    def path(self) -> str:
        return os.path.join(self.wd, self.filename)

    @classmethod
    def cache(cls) -> redis.Redis:
        url = urllib.parse.urlsplit(REDIS_URL)._replace(path=f"/{CACHE_DB}")  # the URL's DB wins
        return redis.Redis.from_url(url.geturl(), decode_responses=True)

    @classmethod
    def getInstance(cls, wd: str) -> NoDbBase:  # noqa: N802 - wepppy's name
        inst = cls(wd)
        with cls.cache() as cache:
            text = cache.get(inst.path)
            inst.source = "cache" if text is not None else "file"
            if text is None:
                with open(inst.path) as fp:
                    text = fp.read()
                cache.set(inst.path, text, ex=CACHE_TTL)
        inst.state = json.loads(text)
        return inst

    def dump(self) -> None:
        text = json.dumps(self.state)
        with open(self.path, "w") as fp:
            fp.write(text)
        with self.cache() as cache:
            cache.set(self.path, text, ex=CACHE_TTL)


class Climate(NoDbBase):
    filename = "climate.nodb"


class Wepp(NoDbBase):
    filename = "wepp.nodb"


class Landuse(NoDbBase):
    filename = "landuse.nodb"


def build_climate_rq(runid: str) -> str:
    """The RQ job: rebuild the climate, then timestamp the task (which invalidates)."""
    wd = get_wd(runid)
    climate = Climate(wd, {"stations": ["ID106388"], "built_by": os.getpid()})
    climate.dump()
    RedisPrep.getInstance(wd).timestamp(TaskEnum.build_climate)
    return wd


def create_app(queue: Queue) -> Flask:
    app = Flask(__name__)

    @app.route("/runs/<string:runid>/<config>/rq/api/build_climate", methods=["POST"])
    def api_build_climate(runid: str, config: str) -> Any:
        prep = RedisPrep.getInstance(get_wd(runid))
        # prep.remove_timestamp(TaskEnum.build_climate)  # removed: timestamp() invalidates
        job = queue.enqueue_call(build_climate_rq, (runid,), timeout=600)
        prep.set_rq_job_id("build_climate_rq", job.id)
        return jsonify(Success=True, job_id=job.id)

    return app
