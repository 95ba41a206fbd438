"""`python -m app.cli ...`: the same as `tl-fif ...`."""
import sys

from app.cli import main

sys.exit(main())
