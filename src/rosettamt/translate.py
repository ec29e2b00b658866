"""Translator (text -> text), the interactive prompt, and attention for plots."""

if __name__ == "__main__":
    from rosettamt.cli.translate import main

    main()
