"""spikeforge.hdl"""
