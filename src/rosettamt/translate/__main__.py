"""``python -m rosettamt.translate`` == ``rosettamt-translate``."""

from rosettamt.cli.translate import main

if __name__ == "__main__":
    main()
