"""The run status page of the demo: ``GET /runs/<runid>/<config>/status``.

Server-rendered HTML (a Jinja template string, no front-end build) showing, for
one run:

- each task's timestamp (the task list in force, see ``set_task_enum``) with
  its label and emoji, and the
  status of the RQ job that stamps it (from the job ids the prep records,
  looked up with ``rq.job.Job.fetch``);
- each controller's state as a controller reads it: the DB-13 cache first
  ("served from cache"), the ``.nodb`` file on a miss ("read from file"), next to
  what the file says, so a stale cached copy is visible. The page is an
  observer: unlike a controller it does not refill the cache on a miss, so the
  "read from file" rows are exactly the caches invalidation removed. The
  "Warm caches" button reads every controller the way wepppy's pages do
  (read-through refills the cache);
- the preflight checklist (``prep.preflight()``);
- an "Invalidations" panel: the live feed of invalidation events
  (:mod:`.events`, Server-Sent Events), newest first, each with its task, every
  cache key deleted and why, and how many of the keys the rules name were
  present; each event also updates the preflight pills from its checklist and
  flips the rows of the deleted keys to "read from file". With events off the
  panel says so and how to turn them on;
- buttons (HTML forms) that run the migrated ``rq_api`` endpoints. With
  JavaScript they post in the background and the page updates in place (so the
  feed stays); without, they redirect back here. While a job is queued or
  running the page re-reads itself every second (in place; a meta refresh
  without JavaScript).

The HTML, CSS and JavaScript of the page, with the element ids tests rely on,
are in :mod:`.status_page`; this module collects what the page shows and serves it.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Optional, Union

from ..prep import RedisPrep
from ..task import TaskEnum, task_emoji, task_enum, task_label
from .events import events_on
from .nodb import NoDbController, cache_client
from .runs import CONTROLLERS, warm_caches
from .status_page import ERROR_PAGE, PAGE

if TYPE_CHECKING:
    import flask
    import werkzeug.wrappers

__all__ = [
    "ACTIONS",
    "JOB_OF_TASK",
    "PENDING",
    "ControllerView",
    "JobView",
    "RunStatus",
    "TaskView",
    "collect_status",
    "read_controller",
    "status_blueprint",
]

# Buttons: action -> (button text, the rq_api endpoint it runs).
ACTIONS: dict[str, tuple[str, str]] = {
    "build_climate": ("Build climate", "rq_api.api_build_climate"),
    "run_wepp": ("Run WEPP", "rq_api.api_run_wepp"),
    "abstract_watershed": ("Abstract watershed", "rq_api.api_abstract_watershed"),
    "build_landuse": ("Build landuse (not migrated)", "rq_api.api_build_landuse"),
}

# Which recorded RQ job (``prep.set_rq_job_id`` name) stamps which task.
JOB_OF_TASK: dict[str, str] = {
    str(TaskEnum.abstract_watershed): "abstract_watershed_rq",
    str(TaskEnum.build_landuse): "build_landuse_rq",
    str(TaskEnum.build_climate): "build_climate_rq",
    str(TaskEnum.run_wepp_hillslopes): "run_wepp_rq",
    str(TaskEnum.run_wepp_watershed): "run_wepp_rq",
}

# RQ statuses during which the page keeps refreshing itself.
PENDING = frozenset({"queued", "started", "deferred", "scheduled"})

Response = Union["werkzeug.wrappers.Response", tuple[str, int], str]


@dataclass
class TaskView:
    task: Enum  # a member of the task list in force (``set_task_enum``)
    timestamp: Optional[int]
    job: Optional[JobView]  # the recorded job that stamps it, if any

    @property
    def label(self) -> str:
        return task_label(self.task)

    @property
    def emoji(self) -> str:
        return task_emoji(self.task)

    @property
    def when(self) -> str:
        if self.timestamp is None:
            return "—"
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.timestamp))


@dataclass
class JobView:
    name: str
    job_id: str
    status: str  # RQ's status: queued, started, finished, failed, ...
    error: Optional[str] = None

    @property
    def label(self) -> str:
        """What the page says: RQ's status, with ``started`` shown as ``running``."""
        return "running" if self.status == "started" else self.status


@dataclass
class ControllerView:
    name: str
    key: str
    source: str  # "cache" | "file" | "missing"
    state: Optional[dict[str, Any]]
    disk: Optional[dict[str, Any]]

    @property
    def revision(self) -> Optional[int]:
        return _revision(self.state)

    @property
    def disk_revision(self) -> Optional[int]:
        return _revision(self.disk)

    @property
    def stale(self) -> bool:
        return self.source == "cache" and self.state != self.disk

    @property
    def summary(self) -> str:
        if self.state is None:
            return "—"
        shown = {k: v for k, v in self.state.items() if k not in ("controller", "runid")}
        return json.dumps(shown, sort_keys=True)


@dataclass
class RunStatus:
    runid: str
    wd: str
    tasks: list[TaskView]
    other_tasks: int
    jobs: list[JobView]
    controllers: list[ControllerView]
    checklist: dict[str, bool]
    pending: bool = field(default=False)


def _revision(state: Optional[dict[str, Any]]) -> Optional[int]:
    if state is None:
        return None
    value = state.get("revision")
    return value if isinstance(value, int) else None


def read_controller(ctrl: NoDbController) -> ControllerView:
    """Read ``ctrl`` in a controller's order (cache, then file on a miss or an
    undecodable value) without refilling the cache; also read the file."""
    disk: Optional[dict[str, Any]]
    try:
        disk = ctrl.read_file()
    except (OSError, ValueError):
        disk = None
    cached = ctrl.cache.get(ctrl.path)
    if cached is not None:
        try:
            state = json.loads(cached)
            if isinstance(state, dict):
                return ControllerView(ctrl.name, ctrl.path, "cache", state, disk)
        except ValueError:
            pass
    source = "file" if disk is not None else "missing"
    return ControllerView(ctrl.name, ctrl.path, source, disk, disk)


def _job_view(name: str, job_id: str, rq_conn: Any) -> JobView:
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        job = Job.fetch(job_id, connection=rq_conn)
    except NoSuchJobError:
        return JobView(name, job_id, "expired")
    status = job.get_status(refresh=False)
    text = str(getattr(status, "value", status) or "unknown")
    error = None
    if text == "failed":
        result = job.latest_result()
        exc = getattr(result, "exc_string", None) if result is not None else None
        if exc:
            error = str(exc).strip().splitlines()[-1]
    return JobView(name, job_id, text, error)


def collect_status(wd: str, redis_url: str, rq_conn: Any = None) -> RunStatus:
    """Everything the page shows for the run in ``wd``. Job statuses need
    ``rq_conn`` (a bytes connection on the RQ DB); without it they are omitted."""
    prep = RedisPrep.getInstance(wd)
    all_tasks = list(task_enum())
    # Job statuses first: a job is "finished" only after its timestamp() ran, so
    # a page that shows it finished also shows what it stamped and invalidated.
    jobs: list[JobView] = []
    if rq_conn is not None:
        jobs = [_job_view(n, i, rq_conn) for n, i in sorted(prep.get_rq_job_ids().items())]
    values = prep._hmget([f"timestamps:{t}" for t in all_tasks])
    job_by_name = {j.name: j for j in jobs}
    tasks: list[TaskView] = []
    for task, raw in zip(all_tasks, values):
        ts = int(raw) if raw is not None and raw.lstrip("+-").isdigit() else None
        job_name = JOB_OF_TASK.get(str(task))
        if ts is None and job_name is None:
            continue
        tasks.append(TaskView(task, ts, job_by_name.get(job_name) if job_name else None))
    client = cache_client(redis_url)
    try:
        controllers = [
            read_controller(NoDbController(wd, name, client))
            for name in CONTROLLERS
            if os.path.exists(os.path.join(wd, f"{name}.nodb"))
        ]
    finally:
        client.close()
    checklist = {str(k): bool(v) for k, v in prep.preflight()["checklist"].items()}
    return RunStatus(
        runid=os.path.basename(wd),
        wd=wd,
        tasks=tasks,
        other_tasks=len(all_tasks) - len(tasks),
        jobs=jobs,
        controllers=controllers,
        checklist=checklist,
        pending=any(j.status in PENDING for j in jobs),
    )


def status_blueprint() -> flask.Blueprint:
    """The ``status`` blueprint. Needs the ``rq_api`` blueprint on the same app
    (its buttons run those endpoints), the ``events`` one (its live feed) and the
    config ``create_app`` sets."""
    import flask

    from .app import _redis_conn
    from .runs import ApiError, run_context

    bp = flask.Blueprint("status", __name__)

    def error_page(e: ApiError) -> tuple[str, int]:
        html = flask.render_template_string(ERROR_PAGE, status=e.status, message=e.message)
        return html, e.status

    @bp.route("/runs/<string:runid>/<config>/status", methods=["GET"])
    def run_status(runid: str, config: str) -> Response:
        try:
            wd = run_context(runid, config)
        except ApiError as e:
            return error_page(e)
        with _redis_conn() as rq_conn:
            status = collect_status(
                wd, flask.current_app.config["REDISPREP_DEMO_REDIS_URL"], rq_conn
            )
        return flask.render_template_string(
            PAGE,
            s=status,
            config=config,
            actions=ACTIONS,
            message=flask.request.args.get("msg"),
            events=events_on()[0],
        )

    @bp.route("/runs/<string:runid>/<config>/status/<action>", methods=["POST"])
    def run_action(runid: str, config: str, action: str) -> Response:
        try:
            wd = run_context(runid, config)
        except ApiError as e:
            return error_page(e)
        back = flask.url_for("status.run_status", runid=runid, config=config)
        if action == "warm_caches":
            warm_caches(wd, tuple(c for c in CONTROLLERS if os.path.exists(f"{wd}/{c}.nodb")))
            return flask.redirect(back + "?msg=caches+warmed", code=303)
        if action not in ACTIONS:
            return error_page(ApiError(404, f"unknown action {action!r}"))
        # Run the real migrated endpoint, then come back here instead of showing JSON.
        view = flask.current_app.view_functions[ACTIONS[action][1]]
        try:
            result: Any = view(runid=runid, config=config)
            reply = flask.current_app.make_response(result)
        except ApiError as e:
            return error_page(e)
        body = reply.get_json(silent=True) or {}
        if reply.status_code != 200 or not body.get("Success"):
            return error_page(ApiError(reply.status_code, str(body.get("Error", body))))
        return flask.redirect(f"{back}?msg={action}+enqueued", code=303)

    return bp
