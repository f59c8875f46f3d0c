"""``python -m governed_db`` runs the ``governed-db`` command."""

import sys

from governed_db.cli.main import main

sys.exit(main())
