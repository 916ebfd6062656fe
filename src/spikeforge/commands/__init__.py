"""CLI sub-commands, one module each (see spikeforge.cli)."""
