"""Decode a split (or any file pair) and score it with sacreBLEU."""

if __name__ == "__main__":
    from rosettamt.cli.evaluate import main

    main()
