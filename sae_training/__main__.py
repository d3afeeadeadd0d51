"""``python -m sae_training``: see :mod:`sae_training.cli`."""

import sys

from sae_training.cli import main

if __name__ == "__main__":
    sys.exit(main())
