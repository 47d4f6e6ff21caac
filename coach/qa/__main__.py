"""``python -m coach.qa SOURCE --sample ... --out DIR``: the qa command on its own."""

import sys

from coach.qa.cli import main

sys.exit(main())
