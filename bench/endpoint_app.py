"""The WSGI apps of ``bench/sec_endpoint.py``, served by gunicorn:

    gunicorn --pythonpath bench,tests 'endpoint_app:create("redisprep")'

``redisprep``: the demo app's migrated ``build_climate`` endpoint, unchanged
(``RedisPrep.getInstance``, enqueue, ``set_rq_job_id``). ``legacy``: the same route
and the same run checks, written the legacy wepppy way: ``RedisPrep.getInstance``
of the pure-Python reference with a ``redis.Redis`` per instance (as wepppy's
``RedisPrep.__init__`` builds one), ``remove_timestamp``, enqueue,
``set_rq_job_id``. Both enqueue a real RQ job on DB 9 with a connection per
request, as wepppy's endpoints do. Settings come from ``BENCH_RUNS_ROOT``,
``BENCH_REDIS_URL`` and ``BENCH_QUEUE``.
"""

from __future__ import annotations

import os
from typing import Any

import flask
import redis

from redisprep import TaskEnum
from redisprep._demo import app as demo
from redisprep._demo.runs import ApiError, run_context
from support.legacy_ref import LegacyRedisPrep


def create(kind: str) -> flask.Flask:
    runs_root = os.environ["BENCH_RUNS_ROOT"]
    url = os.environ["BENCH_REDIS_URL"]
    queue = os.environ["BENCH_QUEUE"]
    app = demo.create_app(runs_root, url, queue)
    if kind == "redisprep":
        return app
    if kind != "legacy":
        raise ValueError(f"kind is 'redisprep' or 'legacy', not {kind!r}")
    legacy = flask.Flask("bench-legacy")
    legacy.config.update(app.config)
    conn_kw = redis.Redis.from_url(url).connection_pool.connection_kwargs
    host, port = conn_kw["host"], conn_kw["port"]

    @legacy.errorhandler(ApiError)
    def _api_error(e: Any) -> Any:
        return flask.jsonify(Success=False, Error=e.message), e.status

    @legacy.route("/runs/<string:runid>/<config>/rq/api/build_climate", methods=["POST"])
    def api_build_climate(runid: str, config: str) -> Any:
        from redisprep._demo.jobs import build_climate_rq

        wd = run_context(runid, config)
        client = redis.Redis(host=host, port=port, db=0, decode_responses=True)
        prep = LegacyRedisPrep.getInstance(wd, client)
        prep.remove_timestamp(TaskEnum.build_climate)
        with demo._redis_conn() as redis_conn:
            q = demo._queue(redis_conn)
            job = q.enqueue_call(build_climate_rq, (runid,), timeout=demo.TIMEOUT)
            prep.set_rq_job_id(build_climate_rq.__name__, job.id)
        return flask.jsonify(Success=True, job_id=job.id)

    return legacy
