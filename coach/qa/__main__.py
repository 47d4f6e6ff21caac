"""``python -m coach.qa SOURCE --sample ... --out DIR``: the qa command on its own."""

import sys

from coach.qa.cli import main

if __name__ == "__main__":
    sys.exit(main())
