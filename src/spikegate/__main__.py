"""``python -m spikegate``: the same command line as the ``spikegate`` script."""
import sys

from .cli import main

sys.exit(main())
