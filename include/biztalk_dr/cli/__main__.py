import sys

from biztalk_dr.cli import main

sys.exit(main())
