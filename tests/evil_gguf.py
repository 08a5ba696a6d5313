#!/usr/bin/env python3
"""A hostile copy of a GGUF file, for the tests that untrusted text never drives the terminal
(tests/e2e/untrusted_text.sh). Standard library only.

  python3 tests/evil_gguf.py IN OUT [--name HEX] [--piece ID=HEX]... [--tensor OLD=HEX]...

--name sets general.name, --piece replaces the text of token ID in tokenizer.ggml.tokens,
--tensor renames a tensor; each new value is given in hex so that any byte (ESC, BEL, C1,
invalid UTF-8) can be written. The file is rebuilt rather than patched: every other key-value
is copied byte for byte, the tensor infos follow with their offsets unchanged (they count from
the data section), and the data section is copied whole after padding to general.alignment.
"""
import struct
import sys

SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
STRING, ARRAY, U32 = 8, 9, 4


class Reader:
    def __init__(self, data):
        self.d, self.p = data, 0

    def take(self, n):
        b = self.d[self.p:self.p + n]
        if len(b) != n:
            raise ValueError("truncated GGUF at %d" % self.p)
        self.p += n
        return b

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def u64(self):
        return struct.unpack("<Q", self.take(8))[0]

    def string(self):
        return self.take(self.u64())

    def value(self, t):
        """The raw bytes of one value of type t."""
        start = self.p
        if t == STRING:
            self.string()
        elif t == ARRAY:
            et, n = self.u32(), self.u64()
            for _ in range(n):
                self.value(et)
        else:
            self.take(SIZES[t])
        return self.d[start:self.p]


def gstr(b):
    return struct.pack("<Q", len(b)) + b


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    src, dst, opts = argv[1], argv[2], argv[3:]
    name, pieces, tensors = None, {}, {}
    for i in range(0, len(opts), 2):
        flag, val = opts[i], opts[i + 1]
        if flag == "--name":
            name = bytes.fromhex(val)
        elif flag == "--piece":
            k, v = val.split("=", 1)
            pieces[int(k)] = bytes.fromhex(v)
        elif flag == "--tensor":
            k, v = val.split("=", 1)
            tensors[k.encode()] = bytes.fromhex(v)
        else:
            sys.exit("unknown option " + flag)
    r = Reader(open(src, "rb").read())
    if r.take(4) != b"GGUF":
        sys.exit(src + ": not a GGUF file")
    version, n_tensors, n_kv = r.u32(), r.u64(), r.u64()
    align = 32
    kvs = []
    for _ in range(n_kv):
        key = r.string()
        t = r.u32()
        raw = r.value(t)
        if key == b"general.alignment":
            align = struct.unpack("<I", raw)[0]
        if key == b"general.name" and name is not None:
            raw, name = gstr(name), None
        if key == b"tokenizer.ggml.tokens" and pieces:
            sub = Reader(raw)
            et, n = sub.u32(), sub.u64()
            toks = [sub.string() for _ in range(n)]
            for k, v in pieces.items():
                toks[k] = v
            raw = struct.pack("<IQ", et, n) + b"".join(gstr(x) for x in toks)
        kvs.append(gstr(key) + struct.pack("<I", t) + raw)
    if name is not None:   # the file had no general.name: add one
        kvs.append(gstr(b"general.name") + struct.pack("<I", STRING) + gstr(name))
    infos = []
    for _ in range(n_tensors):
        tname = r.string()
        n_dims = r.u32()
        rest = r.take(8 * n_dims + 4 + 8)
        infos.append(gstr(tensors.get(tname, tname)) + struct.pack("<I", n_dims) + rest)
    data_at = (r.p + align - 1) // align * align
    out = b"GGUF" + struct.pack("<IQQ", version, n_tensors, len(kvs)) + b"".join(kvs)
    out += b"".join(infos)
    out += b"\0" * ((-len(out)) % align)
    out += r.d[data_at:]
    open(dst, "wb").write(out)


if __name__ == "__main__":
    main(sys.argv)
