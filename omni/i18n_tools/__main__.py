"""``python -m omni.i18n_tools …``"""

import sys

from omni.i18n_tools import main

sys.exit(main())
