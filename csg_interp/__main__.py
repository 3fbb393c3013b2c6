"""``python -m csg_interp`` == ``csg-interp``."""

import sys

from .cli import main

sys.exit(main())
