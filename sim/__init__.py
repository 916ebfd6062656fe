"""spikegate.sim: the generated Verilog in real simulators, checked against the model.

- :mod:`.runner`: Verilog export, content-hashed cached builds for Verilator (default) and Icarus
  through cocotb's runner, runs of cocotb test modules; :mod:`.simulators`: each simulator's flags,
  environment and cocotb runner class.
- :mod:`.core`: :class:`~.core.CoreSim` runs batches of samples through a network's NetworkCore;
- :mod:`.compare`: the model's answer (:func:`~.compare.expected_results`) and
  :func:`~.compare.compare`, which lists every difference from it (first one first).
- :mod:`.tb_core`: the cocotb testbench (runs inside the simulator; kept free of heavy imports).
- :mod:`.pysim`: the same protocol in Amaranth's simulator (the speed baseline).

Nothing is imported here: the simulator process imports :mod:`.tb_core` through this package.
"""
