"""A Flask app shaped like wepppy's ``weppcloud/routes/rq/api/api.py``.

Three endpoints are written the **migrated** way (no ``remove_timestamp()``: the
worker's ``timestamp()`` invalidates at completion); ``build_landuse`` is
deliberately **not migrated** (it still clears its timestamp before enqueueing)
to show both kinds living side by side during a gradual migration, and
``build_soils`` must not be: its job stamps the wrong task (a deliberate worker
bug that ``python -m redisprep migrate --workers`` reports as unsafe). Flask and
RQ are imported lazily.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Optional, Union

from .. import config as _config
from ..prep import RedisPrep
from ..task import TaskEnum
from .runs import ApiError, run_context

if TYPE_CHECKING:
    import flask
    import redis

__all__ = ["RQ_DB", "TIMEOUT", "create_app", "rq_api_blueprint", "rq_connection"]

RQ_DB = 9  # wepppy's RedisDB.RQ
TIMEOUT = 600

Response = Union["flask.Response", tuple["flask.Response", int]]


def rq_connection(redis_url: str) -> redis.Redis:
    """A connection for RQ (bytes replies) on the RQ DB of ``redis_url``."""
    from .. import _client, _redisprep

    conn: redis.Redis = _client.from_params(
        _redisprep.connection_params(redis_url), decode_responses=False, db=RQ_DB
    )
    return conn


@contextlib.contextmanager
def _redis_conn() -> Iterator[redis.Redis]:
    import flask

    conn = rq_connection(flask.current_app.config["REDISPREP_DEMO_REDIS_URL"])
    try:
        yield conn
    finally:
        conn.close()


def _queue(redis_conn: redis.Redis) -> Any:
    import flask
    from rq import Queue

    return Queue(flask.current_app.config["REDISPREP_DEMO_QUEUE"], connection=redis_conn)


def rq_api_blueprint() -> flask.Blueprint:
    """The ``rq_api`` blueprint: three migrated endpoints and one not migrated."""
    import flask

    from ..rq import enqueue_recorded
    from .jobs import (
        abstract_watershed_rq,
        build_climate_rq,
        build_landuse_rq,
        build_soils_rq,
        run_wepp_rq,
    )

    rq_api_bp = flask.Blueprint("rq_api", __name__)

    @rq_api_bp.errorhandler(ApiError)
    def _api_error(e: ApiError) -> Response:
        return flask.jsonify(Success=False, Error=e.message), e.status

    def _enqueue(prep: RedisPrep, func: Callable[[str], Any], runid: str) -> Response:
        # wepppy's hand-written pattern: enqueue, then record the job id under the
        # job function's name (``"build_climate_rq"``).
        with _redis_conn() as redis_conn:
            q = _queue(redis_conn)
            job = q.enqueue_call(func, (runid,), timeout=TIMEOUT)
            prep.set_rq_job_id(func.__name__, job.id)
        return flask.jsonify(Success=True, job_id=job.id)

    @rq_api_bp.route("/runs/<string:runid>/<config>/rq/api/build_climate", methods=["POST"])
    def api_build_climate(runid: str, config: str) -> Response:
        prep = RedisPrep.getInstance(run_context(runid, config))
        # prep.remove_timestamp(TaskEnum.build_climate)  # Removed - automatic invalidation now
        # The worker calls prep.timestamp(TaskEnum.build_climate) when the job
        # completes, which invalidates the dependent caches.
        return _enqueue(prep, build_climate_rq, runid)

    @rq_api_bp.route("/runs/<string:runid>/<config>/rq/api/run_wepp", methods=["POST"])
    def api_run_wepp(runid: str, config: str) -> Response:
        prep = RedisPrep.getInstance(run_context(runid, config))
        # prep.remove_timestamp(TaskEnum.run_wepp_hillslopes)  # Removed - automatic invalidation
        # prep.remove_timestamp(TaskEnum.run_wepp_watershed)  # Removed - automatic invalidation
        return _enqueue(prep, run_wepp_rq, runid)

    @rq_api_bp.route("/runs/<string:runid>/<config>/rq/api/abstract_watershed", methods=["POST"])
    def api_abstract_watershed(runid: str, config: str) -> Response:
        prep = RedisPrep.getInstance(run_context(runid, config))
        # The same migrated pattern in one line with the redisprep.rq helper.
        with _redis_conn() as redis_conn:
            job = enqueue_recorded(
                _queue(redis_conn), prep, abstract_watershed_rq, runid, timeout=TIMEOUT
            )
        return flask.jsonify(Success=True, job_id=job.id)

    @rq_api_bp.route("/runs/<string:runid>/<config>/rq/api/build_landuse", methods=["POST"])
    def api_build_landuse(runid: str, config: str) -> Response:
        # NOT migrated yet: still clears the timestamp by hand before enqueueing.
        prep = RedisPrep.getInstance(run_context(runid, config))
        prep.remove_timestamp(TaskEnum.build_landuse)
        return _enqueue(prep, build_landuse_rq, runid)

    @rq_api_bp.route("/runs/<string:runid>/<config>/rq/api/build_soils", methods=["POST"])
    def api_build_soils(runid: str, config: str) -> Response:
        # NOT migrated, and must not be: its job stamps build_landuse instead of
        # build_soils (a deliberate worker bug; `redisprep migrate` reports it unsafe).
        prep = RedisPrep.getInstance(run_context(runid, config))
        prep.remove_timestamp(TaskEnum.build_soils)
        return _enqueue(prep, build_soils_rq, runid)

    return rq_api_bp


def create_app(
    runs_root: str,
    redis_url: str,
    queue_name: str = "redisprep-demo",
    events: Optional[bool] = None,
) -> flask.Flask:
    """The demo app: configures redisprep for ``redis_url`` (process-wide;
    ``events``: publish invalidation events, ``None`` leaves ``REDISPREP_EVENTS``
    in charge) and registers the ``rq_api`` blueprint. Run ids are folders under
    ``runs_root`` (resolved by the app itself; workers get ``--runs-root``); jobs
    go to RQ queue ``queue_name`` on DB 9 of ``redis_url``. ``REDISPREP_DEMO_STOP``
    (a ``threading.Event``) ends the open event streams when set."""
    import flask

    from .events import KEEPALIVE

    runs_root = os.path.abspath(runs_root)
    _config.configure(redis_url, events=events)
    app = flask.Flask("redisprep._demo")
    app.config.update(
        REDISPREP_DEMO_RUNS_ROOT=runs_root,
        REDISPREP_DEMO_REDIS_URL=redis_url,
        REDISPREP_DEMO_QUEUE=queue_name,
        REDISPREP_DEMO_STOP=threading.Event(),
        REDISPREP_DEMO_SSE_KEEPALIVE=KEEPALIVE,
    )
    app.register_blueprint(rq_api_blueprint())
    return app
