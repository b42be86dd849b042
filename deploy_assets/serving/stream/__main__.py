import sys

from deploy_assets.serving.stream.cli import main

sys.exit(main())
