"""`python -m mailbot` runs the command line."""

from mailbot.cli import main

# Guarded: worker processes (mailbot.workers) import the main module again, and must not run the command.
if __name__ == "__main__":
    main()
