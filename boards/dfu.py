"""The DFU file suffix the OrangeCrab's bootloader (dfu-util) expects at the end of a bitstream."""
from __future__ import annotations

import zlib
from pathlib import Path

__all__ = ["dfu_suffix"]


def dfu_suffix(path: Path, vid: int = 0x1209, pid: int = 0x5AF0) -> None:
    """Append the DFU 1.0 file suffix (what ``dfu-suffix -v 1209 -p 5af0 -a`` writes).

    16 bytes: bcdDevice, idProduct, idVendor, bcdDFU (1.00), "UFD", length 16, then the CRC-32
    of the file and the first 12 suffix bytes, without the final inversion (DFU 1.1, annex B).
    """
    path = Path(path)
    data = path.read_bytes()
    suffix = (0xFFFF).to_bytes(2, "little") + pid.to_bytes(2, "little") + vid.to_bytes(2, "little")
    suffix += (0x0100).to_bytes(2, "little") + b"UFD" + bytes([16])
    crc = zlib.crc32(data + suffix) ^ 0xFFFFFFFF
    path.write_bytes(data + suffix + crc.to_bytes(4, "little"))
