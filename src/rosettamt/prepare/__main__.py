"""``python -m rosettamt.prepare`` == ``rosettamt-prepare``."""

from rosettamt.cli.prepare import main

if __name__ == "__main__":
    main()
