"""Allow ``python -m foot_traffic``."""

from foot_traffic.cli import main

raise SystemExit(main())
