"""PyInstaller entry point for the desktop app (same as the ``piddm-studio`` script)."""

from app.main import main

raise SystemExit(main())
