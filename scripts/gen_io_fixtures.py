#!/usr/bin/env python3
"""Writes the reference files of tests/test_io_*.c into tests/fixtures/io/.

The .npy files come from NumPy (an independent writer); the safetensors files are assembled here
byte by byte with struct and json, following the format description (8-byte little-endian header
length, JSON header, raw data). Values are simple formulas the C tests recompute by hand.

Run with Debian's Python and NumPy (apt-get install python3-numpy):
    /usr/bin/python3 scripts/gen_io_fixtures.py
"""
import json
import os
import struct

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "io")


def npy(name, array, version=None):
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        np.lib.format.write_array(f, array, version=version, allow_pickle=False)


def write_npy_fixtures():
    # f32 (2, 3): i * 0.5 - 1 for i in row-major order
    npy("f32_2x3.npy", (np.arange(6, dtype="<f4") * 0.5 - 1).reshape(2, 3))
    # i64 (3, 4) stored in Fortran order: element [r][c] = 10 * r + c
    a = np.array([[10 * r + c for c in range(4)] for r in range(3)], dtype="<i8")
    npy("i64_fortran_3x4.npy", np.asfortranarray(a))
    # big-endian float64 (5): 1.5 ** i
    npy("f64_big_endian_5.npy", np.array([1.5 ** i for i in range(5)], dtype=">f8"))
    # big-endian int16 (2, 3, 2), Fortran order: element [i][j][k] = 100 * i + 10 * j + k - 50
    b = np.array([[[100 * i + 10 * j + k - 50 for k in range(2)] for j in range(3)] for i in range(2)],
                 dtype=">i2")
    npy("i16_big_endian_fortran_2x3x2.npy", np.asfortranarray(b))
    # complex64 (3): (i + 1) + (-i / 4) j ; big-endian copy too
    c = np.array([complex(i + 1, -i / 4) for i in range(3)], dtype="<c8")
    npy("c8_3.npy", c)
    npy("c8_big_endian_3.npy", c.astype(">c8"))
    # bool (5): i % 2 == 0
    npy("b1_5.npy", np.array([i % 2 == 0 for i in range(5)], dtype="|b1"))
    # float16 (4): 0.25 * i - 0.5 (exact in half precision)
    npy("f2_4.npy", np.array([0.25 * i - 0.5 for i in range(4)], dtype="<f2"))
    # uint16 0-d: 65000
    npy("u16_scalar.npy", np.array(65000, dtype="<u2"))
    # empty float32 (0, 3)
    npy("f32_empty_0x3.npy", np.zeros((0, 3), dtype="<f4"))
    # uint8 (4) = 250 + i, written with format versions 2.0 and 3.0
    npy("u8_v2.npy", np.array([250 + i for i in range(4)], dtype="|u1"), version=(2, 0))
    npy("u8_v3.npy", np.array([250 + i for i in range(4)], dtype="|u1"), version=(3, 0))
    # int8 (2, 2, 1, 2, 1) 5-d: i - 4
    npy("i8_5d.npy", (np.arange(8, dtype="|i1") - 4).reshape(2, 2, 1, 2, 1))


def safetensors(name, tensors, metadata=None, pad=True):
    """tensors: list of (name, dtype, shape, raw bytes), laid out in order."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    for tname, dtype, shape, raw in tensors:
        header[tname] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, _, _, raw in tensors:
            f.write(raw)


def bf16(x):
    return struct.pack("<f", x)[2:]  # the high half of a float32 (exact for these values)


def write_safetensors_fixtures():
    tensors = [
        # F32 (2, 2): i / 8 - 0.25
        ("weight", "F32", [2, 2], struct.pack("<4f", *[i / 8 - 0.25 for i in range(4)])),
        # I32 (3): -1000000 * (i + 1)
        ("bias", "I32", [3], struct.pack("<3i", *[-1000000 * (i + 1) for i in range(3)])),
        # BOOL (3): [1, 0, 1]
        ("mask", "BOOL", [3], bytes([1, 0, 1])),
        # F16 (2): [1.5, -2.0]
        ("half", "F16", [2], struct.pack("<2e", 1.5, -2.0)),
        # BF16 (2): [3.0, -0.5]
        ("brain", "BF16", [2], bf16(3.0) + bf16(-0.5)),
        # U64 0-d: 2**63 + 5
        ("big", "U64", [], struct.pack("<Q", 2 ** 63 + 5)),
        # F32 (0, 4): empty
        ("nothing", "F32", [0, 4], b""),
        # F64 (2): [0.1, 1e300]
        ("wide", "F64", [2], struct.pack("<2d", 0.1, 1e300)),
    ]
    safetensors("mixed.safetensors", tensors, {"format": "pt", "note": "hand-built"})
    # An unpadded header whose data lands at an odd address: loading must copy, not crash.
    safetensors("unaligned.safetensors",
                [("a", "U8", [2], bytes([7, 9])), ("b", "F32", [3], struct.pack("<3f", 1.0, 2.0, 4.0))],
                pad=False)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    write_npy_fixtures()
    write_safetensors_fixtures()
