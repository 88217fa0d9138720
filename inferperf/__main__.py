import sys

from inferperf.cli import main

sys.exit(main())
