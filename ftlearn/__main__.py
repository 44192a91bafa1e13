"""`python -m ftlearn` is the `ftlearn` command."""

from ftlearn.cli import main

raise SystemExit(main())
