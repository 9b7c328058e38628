"""``python -m refconv ...`` runs the ``refconv`` command line."""

import sys

from refconv.cli import main

if __name__ == "__main__":
    sys.exit(main())
