"""``python -m rosettamt.serve`` == ``rosettamt-serve``."""

from rosettamt.cli.serve import main

if __name__ == "__main__":
    main()
