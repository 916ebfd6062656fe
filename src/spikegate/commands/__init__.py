"""CLI sub-commands, one module each (see spikegate.cli)."""
