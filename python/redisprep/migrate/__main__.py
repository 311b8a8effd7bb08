"""``python -m redisprep.migrate`` = ``python -m redisprep migrate``."""

from __future__ import annotations

from ..cli.migrate import main

raise SystemExit(main())
