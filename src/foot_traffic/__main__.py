"""Allow ``python -m foot_traffic``."""

from foot_traffic.cli.commands import main

raise SystemExit(main())
