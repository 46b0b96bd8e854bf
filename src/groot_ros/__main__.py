"""`python -m groot_ros COMMAND`: the package's command-line tools."""

from groot_ros.cli import main

raise SystemExit(main())
