"""``python -m rosettamt.train`` == ``rosettamt-train`` (also under torchrun)."""

from rosettamt.cli.train import main

if __name__ == "__main__":
    main()
