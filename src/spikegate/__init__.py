"""spikegate: a hardware generator for spiking-neural-network accelerators."""
from importlib import metadata as _metadata
from importlib import resources as _resources

try:
    # The version is written once, in pyproject.toml; the installed metadata carries it here.
    __version__ = _metadata.version("spikegate")
except _metadata.PackageNotFoundError:  # a source tree used without installing it
    __version__ = "0+unknown"


def default_network_path():
    """Path of the built-in default network (the digits classifier shipped with the package)."""
    return _resources.files(__name__).joinpath("data", "digits.json")
