"""``python -m etl`` is ``wheels-etl``."""

import sys

from etl.cli import main

sys.exit(main())
