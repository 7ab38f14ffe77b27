import sys

from easyrsa_py.cli import main

sys.exit(main())
