"""Bit-exact integer reference model: the executable specification of spikegate.

Never imports Amaranth: the model must run (and define the arithmetic) without any HDL tooling.
"""
from .network import Layer, Leak, Network, NetworkFormatError, signed_range
from .lif import leak, lif_step, integrate_sum, saturate
from .simulate import SimResult, simulate, classify
from .encode import encode

__all__ = ["Layer", "Leak", "Network", "NetworkFormatError", "signed_range", "leak", "lif_step",
           "integrate_sum", "saturate", "SimResult", "simulate", "classify", "encode"]
