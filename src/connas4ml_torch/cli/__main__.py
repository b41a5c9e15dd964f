import sys

from connas4ml_torch.cli import main

sys.exit(main())
