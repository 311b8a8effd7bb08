"""``RedisPrep``: the drop-in class. The work happens in the native
``PrepCore`` (Rust); this layer adds the pieces that are Python by nature."""

from __future__ import annotations

from typing import Any, Optional

from . import _client
from ._redisprep import PrepCore
from .config import resolve_wd
from .task import task_enum

__all__ = ["RedisPrep"]


def _restore(cls: type[RedisPrep], state: dict[str, Any]) -> RedisPrep:
    return cls.__new__(cls, state["wd"], state.get("cfg_fn"))


class RedisPrep(PrepCore):
    """Cache limited Prep metadata in Redis for lightweight lookups.

    Same Redis layout, dump bytes and methods as wepppy's ``RedisPrep``;
    ``timestamp()`` additionally invalidates dependent controller caches.
    """

    def __init__(self, wd: str, cfg_fn: Optional[Any] = None) -> None:
        """Like legacy: sets ``attrs:loaded`` (and dumps) when ``wd`` has no dump file yet.

        ``RedisPrep.__new__(RedisPrep, wd)`` builds one without touching Redis or the disk.
        """
        self._init_run()

    @staticmethod
    def getInstance(
        wd: str = ".", allow_nonexistent: bool = False, ignore_lock: bool = False
    ) -> RedisPrep:
        """Construct for ``wd``, then ``lazy_load()`` (flags accepted and ignored, like legacy)."""
        return RedisPrep._get_instance(wd)  # type: ignore[no-any-return]

    @staticmethod
    def tryGetInstance(
        wd: str = ".", allow_nonexistent: bool = True, ignore_lock: bool = False
    ) -> Optional[RedisPrep]:
        """``getInstance``, or ``None`` on ``FileNotFoundError``."""
        try:
            return RedisPrep.getInstance(
                wd, allow_nonexistent=allow_nonexistent, ignore_lock=ignore_lock
            )
        except FileNotFoundError:
            return None

    @staticmethod
    def getInstanceFromRunID(
        runid: str, allow_nonexistent: bool = False, ignore_lock: bool = False
    ) -> RedisPrep:
        """``getInstance`` for the folder the configured resolver gives ``runid``."""
        return RedisPrep.getInstance(
            resolve_wd(runid), allow_nonexistent=allow_nonexistent, ignore_lock=ignore_lock
        )

    @property
    def redis(self) -> Any:
        """A real ``redis.Redis`` on the prep DB (``decode_responses=True``), shared per process."""
        return _client.shared_client()

    def __getstate__(self) -> dict[str, Optional[str]]:
        return {"wd": self.wd, "cfg_fn": self.cfg_fn, "run_id": self.run_id}

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), self.__getstate__()))

    def remove_all_timestamp(self) -> None:
        """Delete ``timestamps:<task>`` for every member of the task list (others stay), then
        dump. The task list is the bundled ``TaskEnum`` or the one given to ``set_task_enum``."""
        self._remove_fields([f"timestamps:{task}" for task in task_enum()])

    def timestamps_report(self) -> str:
        """``RedisPrep Timestamps (<run_id>):`` then ``  <task>: <raw value or None>`` per
        member of the task list, in its order (``set_task_enum``; default ``TaskEnum``)."""
        tasks = list(task_enum())
        values = self._hmget([f"timestamps:{task}" for task in tasks])
        lines = [f"RedisPrep Timestamps ({self.run_id}):"]
        lines.extend(f"  {task}: {value}" for task, value in zip(tasks, values))
        return "\n".join(lines)
