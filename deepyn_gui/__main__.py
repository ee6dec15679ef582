"""``python -m deepyn_gui [CLIP]`` starts the desktop viewer (the same as ``deepyn-gui``)."""

from .qt.app import main

raise SystemExit(main())
