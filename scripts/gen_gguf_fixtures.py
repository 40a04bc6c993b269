#!/usr/bin/env python3
"""Writes the GGUF reference files of tests/test_io_gguf.c into tests/fixtures/io/gguf/.

Everything is assembled here byte by byte with struct, following the GGUF format description
(magic, version, counts, key/value pairs, tensor infos with dims fastest-varying first, padding to
general.alignment, data), independently of the C code:

  mixed.gguf       every metadata value type and the plain tensor types, with simple values the C
                   test recomputes by hand;
  quants.gguf      one tensor per block type (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K Q4_K Q5_K Q6_K)
                   with random quants and random fp16 scales, general.alignment = 64;
  quants_ref.gguf  the same names as F32 tensors: their values dequantized here by loops that
                   follow ggml's reference dequantizers, in float32 arithmetic step by step.

Run with Debian's Python and NumPy (apt-get install python3-numpy):
    /usr/bin/python3 scripts/gen_gguf_fixtures.py
"""
import os
import struct

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "io", "gguf")

UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
SCALAR_FORMAT = {UINT8: "<B", INT8: "<b", UINT16: "<H", INT16: "<h", UINT32: "<I", INT32: "<i",
                 FLOAT32: "<f", BOOL: "<?", UINT64: "<Q", INT64: "<q", FLOAT64: "<d"}

# ggml type id, elements per block, bytes per block
TYPES = {"F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20),
         "Q5_0": (6, 32, 22), "Q5_1": (7, 32, 24), "Q8_0": (8, 32, 34), "Q2_K": (10, 256, 84),
         "Q3_K": (11, 256, 110), "Q4_K": (12, 256, 144), "Q5_K": (13, 256, 176),
         "Q6_K": (14, 256, 210), "I8": (24, 1, 1), "I16": (25, 1, 2), "I32": (26, 1, 4),
         "I64": (27, 1, 8), "F64": (28, 1, 8), "BF16": (30, 1, 2)}


def gguf_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def gguf_value(vtype, value):
    if vtype == STRING:
        return gguf_string(value)
    if vtype == ARRAY:
        elem, items = value
        out = struct.pack("<IQ", elem, len(items))
        return out + b"".join(gguf_value(elem, v) for v in items)
    return struct.pack(SCALAR_FORMAT[vtype], value)


def write_gguf(name, kvs, tensors, alignment=32):
    """kvs: [(key, type, value)]; tensors: [(name, type name, row-major shape, raw bytes)]."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for key, vtype, value in kvs:
        out += gguf_string(key) + struct.pack("<I", vtype) + gguf_value(vtype, value)
    offset, blobs = 0, b""
    for tname, ttype, shape, data in tensors:
        ggml_id, block, block_bytes = TYPES[ttype]
        count = int(np.prod(shape))
        assert len(data) == count // block * block_bytes, tname
        out += gguf_string(tname) + struct.pack("<I", len(shape))
        out += b"".join(struct.pack("<Q", d) for d in reversed(shape))  # fastest-varying first
        out += struct.pack("<IQ", ggml_id, offset)
        blobs += data + b"\0" * (-len(data) % alignment)
        offset = len(blobs)
    out += b"\0" * (-len(out) % alignment)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(out + blobs)


def write_mixed():
    kvs = [
        ("general.architecture", STRING, "llama"),
        ("general.name", STRING, "mlxc fixture \u2713"),
        ("test.u8", UINT8, 200), ("test.i8", INT8, -100),
        ("test.u16", UINT16, 60000), ("test.i16", INT16, -30000),
        ("test.u32", UINT32, 4000000000), ("test.i32", INT32, -2000000000),
        ("test.f32", FLOAT32, 0.25), ("test.bool", BOOL, True),
        ("test.u64", UINT64, 2**63 + 5), ("test.i64", INT64, -2**40),
        ("test.f64", FLOAT64, 0.1),
        ("test.ints", ARRAY, (INT32, [1, -2, 3])),
        ("test.floats", ARRAY, (FLOAT32, [0.5, 1.5])),
        ("test.empty", ARRAY, (UINT8, [])),
        ("tokenizer.ggml.tokens", ARRAY, (STRING, ["<s>", "</s>", "hello", "w\u00f6rld", ""])),
    ]
    tensors = [
        ("weight", "F32", (2, 3), (np.arange(6, dtype="<f4") * 0.5 - 1).tobytes()),
        ("half", "F16", (4,), np.array([1.5, -2, 0.5, 65504], dtype="<f2").tobytes()),
        ("brain", "BF16", (2,), struct.pack("<HH", 0x4040, 0xBF00)),  # 3.0, -0.5
        ("wide", "F64", (2,), np.array([0.1, 1e300], dtype="<f8").tobytes()),
        ("small", "I8", (3,), np.array([-128, 0, 127], dtype="i1").tobytes()),
        ("short", "I16", (2, 2), np.array([-1, 2, 300, -32768], dtype="<i2").tobytes()),
        ("int", "I32", (1, 2, 3), (np.arange(6, dtype="<i4") * 1000 - 2500).tobytes()),
        ("long", "I64", (2,), np.array([-2**40, 2**62], dtype="<i8").tobytes()),
    ]
    write_gguf("mixed.gguf", kvs, tensors)


# ---- ggml's reference dequantizers, as loops over blocks in float32 ----

F32 = np.float32


def half(b, at):
    return F32(np.frombuffer(b[at:at + 2], dtype="<f2")[0])


def deq_q4_0(b):
    d = half(b, 0)
    y = [F32(0)] * 32
    for j in range(16):
        y[j] = F32((b[2 + j] & 0xF) - 8) * d
        y[j + 16] = F32((b[2 + j] >> 4) - 8) * d
    return y


def deq_q4_1(b):
    d, m = half(b, 0), half(b, 2)
    y = [F32(0)] * 32
    for j in range(16):
        y[j] = F32(b[4 + j] & 0xF) * d + m
        y[j + 16] = F32(b[4 + j] >> 4) * d + m
    return y


def deq_q5(b, d, m, qh_at, qs_at, offset):
    qh = struct.unpack("<I", b[qh_at:qh_at + 4])[0]
    y = [F32(0)] * 32
    for j in range(16):
        xh0 = ((qh >> j) << 4) & 0x10
        xh1 = (qh >> (j + 12)) & 0x10
        y[j] = F32(((b[qs_at + j] & 0xF) | xh0) - offset) * d + m
        y[j + 16] = F32(((b[qs_at + j] >> 4) | xh1) - offset) * d + m
    return y


def deq_q5_0(b):
    return deq_q5(b, half(b, 0), F32(0), 2, 6, 16)


def deq_q5_1(b):
    return deq_q5(b, half(b, 0), half(b, 2), 4, 8, 0)


def deq_q8_0(b):
    d = half(b, 0)
    return [F32(struct.unpack("b", b[2 + j:3 + j])[0]) * d for j in range(32)]


def deq_q2_k(b):
    scales, q, d, dmin = b[0:16], b[16:80], half(b, 80), half(b, 82)
    y, is_, qo = [], 0, 0
    for _ in range(2):
        shift = 0
        for _ in range(4):
            for part in range(2):
                sc = scales[is_]
                is_ += 1
                dl, ml = d * F32(sc & 0xF), dmin * F32(sc >> 4)
                for l in range(16):
                    y.append(dl * F32((q[qo + 16 * part + l] >> shift) & 3) - ml)
            shift += 2
        qo += 32
    return y


def deq_q3_k(b):
    hm, q, raw, d = b[0:32], b[32:96], b[96:108], half(b, 108)
    # the 12 scale bytes -> 16 6-bit values, through 32-bit words as ggml does
    aux = list(struct.unpack("<III", raw))
    kmask1, kmask2 = 0x03030303, 0x0F0F0F0F
    tmp = aux[2]
    a2 = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4)
    a3 = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4)
    a0 = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4)
    a1 = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4)
    scales = struct.unpack("16b", struct.pack("<IIII", a0, a1, a2, a3))
    y, is_, qo, m = [], 0, 0, 1
    for _ in range(2):
        shift = 0
        for _ in range(4):
            for part in range(2):
                dl = d * F32(scales[is_] - 32)
                is_ += 1
                for l in range(16):
                    k = 16 * part + l
                    v = ((q[qo + k] >> shift) & 3) - (0 if hm[k] & m else 4)
                    y.append(dl * F32(v))
            shift += 2
            m <<= 1
        qo += 32
    return y


def scale_min_k4(j, q):
    if j < 4:
        return q[j] & 63, q[j + 4] & 63
    return (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4)


def deq_q45_k(b, has_high):
    d, dmin, sc = half(b, 0), half(b, 2), b[4:16]
    qh = b[16:48] if has_high else None
    ql = b[48:176] if has_high else b[16:144]
    y, is_, qo, u1, u2 = [], 0, 0, 1, 2
    for _ in range(4):
        s1, m1 = scale_min_k4(is_, sc)
        s2, m2 = scale_min_k4(is_ + 1, sc)
        d1, mm1, d2, mm2 = d * F32(s1), dmin * F32(m1), d * F32(s2), dmin * F32(m2)
        for l in range(32):
            v = (ql[qo + l] & 0xF) + (16 if has_high and qh[l] & u1 else 0)
            y.append(d1 * F32(v) - mm1)
        for l in range(32):
            v = (ql[qo + l] >> 4) + (16 if has_high and qh[l] & u2 else 0)
            y.append(d2 * F32(v) - mm2)
        qo += 32
        is_ += 2
        u1 <<= 2
        u2 <<= 2
    return y


def deq_q6_k(b):
    ql, qh, sc, d = b[0:128], b[128:192], struct.unpack("16b", b[192:208]), half(b, 208)
    y = [F32(0)] * 256
    for n in range(2):
        for l in range(32):
            is_ = 8 * n + l // 16
            h = qh[32 * n + l]
            q1 = ((ql[64 * n + l] & 0xF) | (((h >> 0) & 3) << 4)) - 32
            q2 = ((ql[64 * n + l + 32] & 0xF) | (((h >> 2) & 3) << 4)) - 32
            q3 = ((ql[64 * n + l] >> 4) | (((h >> 4) & 3) << 4)) - 32
            q4 = ((ql[64 * n + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32
            y[128 * n + l] = d * F32(sc[is_]) * F32(q1)
            y[128 * n + l + 32] = d * F32(sc[is_ + 2]) * F32(q2)
            y[128 * n + l + 64] = d * F32(sc[is_ + 4]) * F32(q3)
            y[128 * n + l + 96] = d * F32(sc[is_ + 6]) * F32(q4)
    return y


DEQUANT = {"Q4_0": deq_q4_0, "Q4_1": deq_q4_1, "Q5_0": deq_q5_0, "Q5_1": deq_q5_1,
           "Q8_0": deq_q8_0, "Q2_K": deq_q2_k, "Q3_K": deq_q3_k,
           "Q4_K": lambda b: deq_q45_k(b, False), "Q5_K": lambda b: deq_q45_k(b, True),
           "Q6_K": deq_q6_k}
# byte offsets of the fp16 scales in each block (set to sane random values)
HALF_FIELDS = {"Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
               "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208]}


def random_blocks(rng, ttype, n_blocks):
    _, _, block_bytes = TYPES[ttype]
    data = bytearray(rng.integers(0, 256, n_blocks * block_bytes, dtype=np.uint8).tobytes())
    for i in range(n_blocks):
        for at in HALF_FIELDS[ttype]:
            v = np.float16(rng.uniform(-2, 2))
            data[i * block_bytes + at:i * block_bytes + at + 2] = v.tobytes()
    return bytes(data)


def write_quants():
    rng = np.random.default_rng(20240611)
    specs = [("q4_0.weight", "Q4_0", (2, 64)), ("q4_1.weight", "Q4_1", (2, 64)),
             ("q8_0.weight", "Q8_0", (2, 64)), ("q5_0.weight", "Q5_0", (2, 64)),
             ("q5_1.weight", "Q5_1", (2, 64)), ("q2_k.weight", "Q2_K", (2, 256)),
             ("q3_k.weight", "Q3_K", (2, 256)), ("q4_k.weight", "Q4_K", (2, 256)),
             ("q5_k.weight", "Q5_K", (2, 256)), ("q6_k.weight", "Q6_K", (2, 256)),
             ("cube.weight", "Q4_0", (2, 2, 32)), ("raw_q8", "Q8_0", (32,))]
    tensors, refs = [], []
    for name, ttype, shape in specs:
        _, block, block_bytes = TYPES[ttype]
        n_blocks = int(np.prod(shape)) // block
        data = random_blocks(rng, ttype, n_blocks)
        values = []
        for i in range(n_blocks):
            values += DEQUANT[ttype](data[i * block_bytes:(i + 1) * block_bytes])
        tensors.append((name, ttype, shape, data))
        refs.append((name, "F32", shape, np.array(values, dtype="<f4").tobytes()))
    write_gguf("quants.gguf", [("general.alignment", UINT32, 64)], tensors, alignment=64)
    write_gguf("quants_ref.gguf", [], refs)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    write_mixed()
    write_quants()
