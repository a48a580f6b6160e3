"""``python -m lab`` is ``netlab``."""

import sys

from lab.cli import main

sys.exit(main())
