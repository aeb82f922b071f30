"""``python -m perceptrons`` runs the command-line tool."""

import sys

from perceptrons.cli.main import main

sys.exit(main())
