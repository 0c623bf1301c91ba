import sys

from compute.bench.run import main

if __name__ == "__main__":
    sys.exit(main())
