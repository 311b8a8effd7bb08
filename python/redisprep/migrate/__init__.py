"""``python -m redisprep migrate``: find the manual ``prep.remove_timestamp(TaskEnum.X)``
calls in wepppy's RQ endpoints, verify each against the RQ job side, and remove
the ones proven safe.

- :mod:`.scan` finds the calls (``ast``), :mod:`.edit` removes chosen ones byte-exactly;
- :mod:`.index` parses the job and controller modules (nothing is imported),
  :mod:`.names` resolves names and imports (cycle-safe), :mod:`.values` evaluates
  expressions statically to the :mod:`.atoms` it knows, :mod:`.tasks` reads the
  application's ``TaskEnum``, :mod:`.blocks` groups a body's calls by branch,
  :mod:`.trace` follows an endpoint to its jobs and each job to the timestamps it
  sets (:mod:`.evidence` holds what it found);
- :mod:`.verdict` decides ``safe`` / ``covered`` / ``unsafe`` with the rules,
  :mod:`.callers` finds the endpoints reaching a helper and :mod:`.helpers` judges a
  helper-held call per caller; :mod:`.analyse` runs it and :mod:`.report` formats
  it. The command that prints it is :mod:`redisprep.cli.migrate`.
"""

from __future__ import annotations

from .analyse import analyse, worker_report, worker_stamps
from .edit import fix_source, iter_python_files
from .index import Project
from .scan import MARKER, PRAGMA, Finding, MigrationError, scan_source
from .verdict import REASONS, VERDICTS, Verdict

__all__ = [
    "MARKER",
    "PRAGMA",
    "REASONS",
    "VERDICTS",
    "Finding",
    "MigrationError",
    "Project",
    "Verdict",
    "analyse",
    "fix_source",
    "iter_python_files",
    "scan_source",
    "worker_report",
    "worker_stamps",
]
