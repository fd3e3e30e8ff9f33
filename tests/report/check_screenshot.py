#!/usr/bin/env python3
"""Exit 0 when a PNG (8-bit RGB/RGBA, as Chromium writes) is not blank: decodes it with zlib and
counts the distinct pixel colours and the share of non-white pixels."""
import struct
import sys
import zlib


def main(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        print("check_screenshot: not a PNG")
        return 1
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            channels = {2: 3, 6: 4}.get(colour, 0)
            if depth != 8 or channels == 0:
                print(f"check_screenshot: unsupported PNG (depth {depth}, colour type {colour})")
                return 1
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    prev = bytearray(stride)
    colours, non_white = set(), 0
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        if y % 4 == 0:
            for x in range(0, width, 4):
                px = bytes(line[x * channels:x * channels + 3])
                colours.add(px)
                non_white += px != b"\xff\xff\xff"
        prev = line
    sampled = ((height + 3) // 4) * ((width + 3) // 4)
    share = non_white / max(sampled, 1)
    print(f"check_screenshot: {width}x{height}, {len(colours)} colours, {share:.1%} non-white")
    return 0 if len(colours) >= 8 and share > 0.02 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
