"""Dependent controllers see cache misses after a task completes; the others
keep reading their cache."""

import pytest

from redisprep import TaskEnum
from wepppy_app import Climate, Landuse, Wepp


def warm(wd):
    for cls in (Climate, Wepp, Landuse):
        cls(wd, {"name": cls.filename}).dump()


def test_dependent_controllers_see_cache_misses(prep_run, invalidations):
    warm(prep_run.wd)
    assert Wepp.getInstance(prep_run.wd).source == "cache"
    prep_run.prep.timestamp(TaskEnum.run_wepp_hillslopes)
    invalidations.assert_invalidated(TaskEnum.run_wepp_hillslopes, ["wepp"], run=prep_run)
    wepp = Wepp.getInstance(prep_run.wd)
    assert (wepp.source, wepp.state) == ("file", {"name": "wepp.nodb"})
    assert Wepp.getInstance(prep_run.wd).source == "cache"  # re-cached on the miss
    assert Climate.getInstance(prep_run.wd).source == "cache"
    assert Landuse.getInstance(prep_run.wd).source == "cache"


RULES = {"version": 1, "db": 13,
         "controllers": {n: {"keys": [f"{{wd}}/{n}.nodb"]} for n in ("climate", "landuse")},
         "tasks": {"build_climate": {"invalidates": ["climate", "landuse"]}}}


@pytest.mark.redisprep_rules(RULES)
def test_a_deployments_own_rules(prep_run, invalidations):
    warm(prep_run.wd)
    prep_run.prep.timestamp(TaskEnum.build_climate)
    invalidations.assert_invalidated(TaskEnum.build_climate, ["climate", "landuse"])
    assert Landuse.getInstance(prep_run.wd).source == "file"
    assert Wepp.getInstance(prep_run.wd).source == "cache"
