"""``python -m emrcomm``: the ``emrcomm`` command."""

import sys

from emrcomm.cli import main

sys.exit(main())
