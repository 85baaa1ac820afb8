import sys

from pridss_rt.cli import main

sys.exit(main())
