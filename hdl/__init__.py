"""spikegate.hdl: Amaranth 0.5 gateware of the accelerator.

- :mod:`.neuron`: ``LIFNeuronUnit``, one lane's LIF update (the contract of ``model.lif``);
- :mod:`.synapse`: ``SynapseArray``, a layer's weights in block RAM (or iCE40 SPRAM) accumulated
  into P-lane exact sums where they are read;
- :mod:`.layer`: ``LayerCore``, one event-driven, time-multiplexed layer (integrate, then sweep);
- :mod:`.core`: ``NetworkCore``, the layers chained with input buffer, counters and cfg port
  (port contract: docs/architecture.md);
- :mod:`.export`: ``build_core`` / ``export_verilog`` (the generator API behind ``spikegate export``);
- :mod:`.synth`: Yosys synthesis statistics; :mod:`.testbench`: Amaranth-simulator driver;
- :mod:`.link`: the UART host link around a NetworkCore.

Each block has a bit- and cycle-exact twin of the same name in :mod:`spikegate.model`.
"""
