"""``python -m mmfocal``: the same as ``mmfocal-config`` (list, path, show the shipped configs)."""

from mmfocal.apis.configs import main

raise SystemExit(main())
