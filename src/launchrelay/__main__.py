"""``python -m launchrelay`` is the ``launchrelay`` command."""

import sys

from launchrelay.cli import main

sys.exit(main())
