"""`python -m lcengine`: the `lcengine` command."""

from .cli import main

main()
