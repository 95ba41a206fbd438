"""`python -m tlfif_local up|token ...`: the same as `tl-fif cloud up|token ...`."""
import sys

from .cli import main

sys.exit(main(sys.argv[1:]))
