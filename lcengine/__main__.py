"""`python -m lcengine`: the `lcengine` command, for tools that spawn it with `sys.executable` (the
interpreter they run in) rather than whatever `lcengine` comes first on PATH."""

from .cli import main

main(prog_name="lcengine")
