"""A pure-Python reference of legacy wepppy ``RedisPrep`` behaviour, written
from its Redis layout, dump format and class surface (redis-py + json;
see docs/COMPATIBILITY.md). The differential tests run the same
scripted calls against it and against redisprep and compare bytes."""

from __future__ import annotations

import json
import os
import time
from enum import Enum
from typing import Any, ClassVar, Optional

import redis

from redisprep import TaskEnum


class LegacyRedisPrep:
    #: The module-level ``TaskEnum`` legacy code iterates: wepppy's own (tests set
    #: an application enum here while redisprep gets it from ``set_task_enum``).
    task_enum: ClassVar[type[Enum]] = TaskEnum

    def __init__(self, wd: str, client: redis.Redis[str], cfg_fn: Optional[str] = None) -> None:
        self.wd = wd
        self.cfg_fn = cfg_fn
        self.redis = client
        self.run_id = os.path.split(wd.rstrip("/"))[1]
        if not os.path.exists(self.dump_filepath):
            self._set_bool_config("loaded", True)

    @classmethod
    def getInstance(cls, wd: str, client: redis.Redis[str]) -> LegacyRedisPrep:
        inst = cls(wd, client)
        inst.lazy_load()
        return inst

    @property
    def dump_filepath(self) -> str:
        return os.path.join(self.wd, "redisprep.dump")

    def dump(self) -> None:
        d = self.redis.hgetall(self.run_id)
        d = {k: v for k, v in d.items() if not k.startswith("locked:")}
        if not os.path.exists(self.wd):
            return
        with open(self.dump_filepath, "w") as fp:
            json.dump(d, fp)

    def lazy_load(self) -> None:
        if self._get_bool_config("loaded"):
            return
        if os.path.exists(self.dump_filepath):
            with open(self.dump_filepath) as fp:
                d = json.load(fp)
            for k, v in d.items():
                self.redis.hset(self.run_id, k, v)
            self.redis.hset(self.run_id, "attrs:loaded", "true")

    @property
    def sbs_required(self) -> bool:
        return self._get_bool_config("sbs_required")

    @sbs_required.setter
    def sbs_required(self, value: bool) -> None:
        self._set_bool_config("sbs_required", value)

    @property
    def has_sbs(self) -> bool:
        return self._get_bool_config("has_sbs")

    @has_sbs.setter
    def has_sbs(self, value: bool) -> None:
        self._set_bool_config("has_sbs", value)

    def _get_bool_config(self, key: str) -> bool:
        v = self.redis.hget(self.run_id, f"attrs:{key}")
        return v.lower() == "true" if v is not None else False

    def _set_bool_config(self, key: str, value: Any) -> None:
        self.redis.hset(self.run_id, f"attrs:{key}", str(bool(value)).lower())
        self.dump()

    def timestamp(self, key: Any, now: Optional[int] = None) -> None:
        self[str(key)] = int(time.time()) if now is None else now

    def timestamps_report(self) -> str:
        s = [f"RedisPrep Timestamps ({self.run_id}):"]
        for key in self.task_enum:
            s.append(f"  {key}: {self.redis.hget(self.run_id, f'timestamps:{key}')}")
        return "\n".join(s)

    def remove_timestamp(self, key: Any) -> None:
        self.redis.hdel(self.run_id, f"timestamps:{key}")
        self.dump()

    def remove_all_timestamp(self) -> None:
        for task in self.task_enum:
            self.redis.hdel(self.run_id, f"timestamps:{task}")
        self.dump()

    def __setitem__(self, key: Any, value: Any) -> None:
        self.redis.hset(self.run_id, f"timestamps:{key}", value)
        self.dump()

    def __getitem__(self, key: Any) -> Optional[int]:
        v = self.redis.hget(self.run_id, f"timestamps:{key}")
        return None if v is None else int(v)

    def set_rq_job_id(self, key: Any, job_id: str) -> None:
        self.redis.hset(self.run_id, f"rq:{key}", job_id)
        self.dump()

    def get_rq_job_id(self, key: Any) -> Optional[str]:
        return self.redis.hget(self.run_id, f"rq:{key}")

    def get_rq_job_ids(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for k in self.redis.hkeys(self.run_id):
            if k.startswith("rq:"):
                out[k[3:]] = self.redis.hget(self.run_id, k)  # type: ignore[assignment]
        return out

    def set_archive_job_id(self, job_id: str) -> None:
        self.redis.hset(self.run_id, "archive:job_id", job_id)
        self.dump()

    def get_archive_job_id(self) -> Optional[str]:
        return self.redis.hget(self.run_id, "archive:job_id")

    def clear_archive_job_id(self) -> None:
        self.redis.hdel(self.run_id, "archive:job_id")
        self.dump()
