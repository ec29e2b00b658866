"""``python -m rosettamt.evaluate`` == ``rosettamt-evaluate``."""

from rosettamt.cli.evaluate import main

if __name__ == "__main__":
    main()
