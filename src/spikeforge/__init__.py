"""spikeforge: a hardware generator for spiking-neural-network accelerators."""
from importlib import resources as _resources

__version__ = "0.1.0"


def default_network_path():
    """Path of the built-in default network (the digits classifier shipped with the package)."""
    return _resources.files(__name__).joinpath("data", "digits.json")
