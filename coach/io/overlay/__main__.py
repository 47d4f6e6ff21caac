"""``python -m coach.io.overlay``: the overlay as its own process (``coach live`` starts it
this way)."""

import sys

from coach.io.overlay import main

sys.exit(main())
