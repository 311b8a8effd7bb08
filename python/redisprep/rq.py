"""RQ helpers: timestamp a task (and so invalidate its dependent caches) only
when a job succeeds, and record the job id the wepppy way, each in one line.

    from redisprep.rq import timestamps, timestamp_on_success, enqueue_recorded

    @timestamps(TaskEnum.build_climate)          # job(runid): timestamp after it returns
    def build_climate_rq(runid): ...

    job = enqueue_recorded(q, prep, build_climate_rq, runid)   # + set_rq_job_id
    q.enqueue(fn, runid, on_success=timestamp_on_success(TaskEnum.build_climate))

RQ semantics both helpers rely on: the job function and its ``on_success``
callback run in the forked work horse, the callback after the function
returned. If the function raises, nothing is timestamped. If the timestamp
itself raises (e.g. Redis is down), RQ marks the job *failed* and records that
exception. With ``wd_from="runid"`` (the default) the worker must be able to
resolve run ids: ``redisprep.set_run_resolver(get_wd)`` at worker start-up, or
``REDISPREP_RUNS_ROOT``. ``rq`` is imported lazily.
"""

from __future__ import annotations

import base64
import functools
import importlib
import json
import os
from collections.abc import Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union

from .config import resolve_wd
from .errors import ConfigError, InvalidKeyError, RedisPrepError
from .prep import RedisPrep

if TYPE_CHECKING:
    from redis import Redis
    from rq import Callback, Queue
    from rq.job import Job

__all__ = [
    "WD_FROM",
    "enqueue_recorded",
    "preload",
    "timestamp_on_success",
    "timestamps",
]

Task = Union[Enum, str]
F = TypeVar("F", bound=Callable[..., Any])

#: How a helper finds the run folder: ``"runid"`` = the job's first argument (or
#: ``runid=``) is a run id, resolved with :func:`redisprep.resolve_wd` (wepppy's
#: ``get_wd``); ``"wd"`` = the first argument (or ``wd=``) is the folder;
#: ``"result"`` (callbacks only) = the job returned the folder.
WD_FROM = ("runid", "wd", "result")

_PREFIX = "timestamp_on_success__"


def _task_names(tasks: Sequence[Task]) -> list[str]:
    if not tasks:
        raise InvalidKeyError("name at least one task to timestamp")
    names = []
    for task in tasks:
        if not isinstance(task, (str, Enum)):
            raise InvalidKeyError(f"a task is a TaskEnum member or a str, not {task!r}")
        names.append(str(task))
    return names


def _wd_from_args(wd_from: str, args: Sequence[Any], kwargs: dict[str, Any]) -> str:
    value = kwargs.get(wd_from, args[0] if args else None)
    if not isinstance(value, str) or not value:
        raise RedisPrepError(
            f"wd_from={wd_from!r}: the job's first argument (or {wd_from}=) must be a "
            f"non-empty str, got {value!r}"
        )
    return resolve_wd(value) if wd_from == "runid" else value


def _stamp(wd: str, tasks: Sequence[str], invalidate: bool) -> None:
    prep = RedisPrep.getInstance(wd)
    for task in tasks:
        prep.timestamp(task, invalidate=invalidate)


def timestamps(
    *tasks: Task,
    wd_from: Union[str, Callable[..., str]] = "runid",
    invalidate: bool = True,
) -> Callable[[F], F]:
    """Decorate a job function so that, after it **returns**, each task is
    timestamped in order: ``RedisPrep.getInstance(wd).timestamp(task)``.

    If the function raises, nothing is timestamped and nothing invalidated. The
    timestamp runs inside the job (under its timeout): if it fails, the job fails.
    ``wd_from`` is ``"runid"``, ``"wd"`` (see :data:`WD_FROM`) or a callable
    receiving the job's arguments. ``invalidate=False`` is legacy wepppy.
    """
    names = _task_names(tasks)
    if not callable(wd_from) and wd_from not in ("runid", "wd"):
        raise ConfigError(f"wd_from must be 'runid', 'wd' or a callable, not {wd_from!r}")

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = func(*args, **kwargs)
            if callable(wd_from):
                wd = wd_from(*args, **kwargs)
            else:
                wd = _wd_from_args(wd_from, args, kwargs)
            _stamp(wd, names, invalidate)
            return result

        return wrapper  # type: ignore[return-value]

    return decorate


def timestamp_on_success(
    *tasks: Task,
    wd: Optional[str] = None,
    wd_from: str = "runid",
    invalidate: bool = True,
    timeout: Optional[int] = None,
) -> Callback:
    """An RQ ``Callback`` for ``on_success=``: after the job returned, timestamp
    each task for the job's run (``wd``, else ``wd_from``, see :data:`WD_FROM`).

    RQ stores callbacks by import path and runs them in the work horse, so the
    parameters travel inside the callback's name (an attribute of this module
    that the module's ``__getattr__`` rebuilds); any worker that can import
    ``redisprep.rq`` can run it. If the timestamp raises, RQ marks the job failed.
    """
    try:
        from rq import Callback
    except ImportError as e:
        raise ConfigError("redisprep.rq needs the 'rq' package: pip install 'redisprep[rq]'") from e
    names = _task_names(tasks)
    if wd is None and wd_from not in WD_FROM:
        raise ConfigError(f"wd_from must be one of {WD_FROM}, not {wd_from!r}")
    if wd is not None and (not isinstance(wd, str) or not wd):
        raise ConfigError(f"wd must be a non-empty str, not {wd!r}")
    spec = {"tasks": names, "wd": wd, "wd_from": wd_from, "invalidate": bool(invalidate)}
    payload = base64.urlsafe_b64encode(json.dumps(spec).encode()).decode().rstrip("=")
    return Callback(f"{__name__}.{_PREFIX}{payload}", timeout=timeout)


def _callback_from_name(name: str) -> Callable[[Job, Redis, Any], None]:
    payload = name[len(_PREFIX) :]
    try:
        spec = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        tasks = [str(t) for t in spec["tasks"]]
        fixed_wd: Optional[str] = spec["wd"]
        wd_from = str(spec["wd_from"])
        invalidate = bool(spec["invalidate"])
    except (ValueError, KeyError, TypeError) as e:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r} ({e})") from None

    def on_success(job: Job, connection: Redis, result: Any, *args: Any, **kwargs: Any) -> None:
        if fixed_wd is not None:
            wd = fixed_wd
        elif wd_from == "result":
            if not isinstance(result, (str, os.PathLike)):
                raise RedisPrepError(
                    f"job {job.id}: wd_from='result' needs the job to return its run folder, "
                    f"it returned {result!r}"
                )
            wd = os.fspath(result)
        else:
            wd = _wd_from_args(wd_from, job.args, job.kwargs)
        _stamp(wd, tasks, invalidate)

    on_success.__name__ = on_success.__qualname__ = name
    on_success.__module__ = __name__
    return on_success


def _module_getattr(name: str) -> Any:
    if name.startswith(_PREFIX):
        return _callback_from_name(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# Run time only: a module ``__getattr__`` a type checker saw would make every
# misspelt ``redisprep.rq.<name>`` type-check as ``Any``.
if not TYPE_CHECKING:
    __getattr__ = _module_getattr


def enqueue_recorded(
    queue: Queue,
    prep: RedisPrep,
    func: Callable[..., Any],
    *args: Any,
    key: Optional[str] = None,
    **enqueue_kwargs: Any,
) -> Job:
    """``queue.enqueue_call(func, args, ...)`` then ``prep.set_rq_job_id(key, job.id)``;
    ``key`` defaults to the function's name (wepppy: ``'build_climate_rq'``)."""
    job = queue.enqueue_call(func, args=args, **enqueue_kwargs)
    prep.set_rq_job_id(key or getattr(func, "__name__", str(func)), job.id)
    return job


def preload(*modules: str) -> dict[str, Any]:
    """Prepare an RQ worker *parent* so that every forked work horse starts warm.

    RQ runs each job in a freshly forked work horse, so what a job pays is the
    first redisprep call in a new process. Called once at worker start-up, before
    ``Worker.work()``, this does in the parent what every horse would otherwise
    repeat: import redisprep and ``modules`` (e.g. your job modules), parse the
    configuration (``REDIS_URL``..., or what :func:`redisprep.configure` set) and
    load and validate the active rules file. The horse inherits these across the
    fork. It opens **no** connection: sockets never cross a fork, each horse opens
    its own on its first call (the pool checks the pid).

    With the ``rq worker`` command, call it from the settings module
    (``rq worker -c mysettings``), which RQ imports in the parent. Returns what was
    loaded: ``{"rules": <source or None>, "connection": connection_info()}``.
    Raises the usual :class:`~redisprep.RulesError` / :class:`~redisprep.ConfigError`
    at start-up rather than in the first job.
    """
    from . import _redisprep

    for name in modules:
        importlib.import_module(name)
    info = dict(_redisprep.connection_info())
    rules = _redisprep.active_rules()
    if rules is None:
        raise ConfigError("preload: no rules file could be loaded (see REDISPREP_RULES)")
    return {"rules": rules.source, "connection": info}
