#!/usr/bin/env python3
"""Reads a TensorBoard log directory with the real `tensorboard` package and prints what it saw
as JSON, for tests/tensorboard.rs to compare with what tapegrad wrote.

Usage: .venv/bin/python scripts/check_tensorboard.py <logdir>

Output: {"runs": {<run path relative to logdir>: {"scalars": {tag: [[step, value], ...]},
"histograms": {tag: [{"step", "min", "max", "num", "sum", "sum_squares", "bucket_limit",
"bucket"}]}, "text": {tag: [[step, text]]}, "images": {tag: [{"step", "width", "height",
"pixels": [...]}]}, "graph": {"nodes": [{"name", "op", "input", "shapes"}]} or null,
"hparams": {tag: {...}}}}}

Images are decoded here with zlib alone (8-bit, non-interlaced PNG), independently of the Rust
encoder.
"""
import json
import struct
import sys
import zlib

from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.backend.event_processing import event_multiplexer as em
from tensorboard.plugins.hparams import plugin_data_pb2
from google.protobuf import json_format


def decode_png(data):
    """Pixels of an 8-bit non-interlaced PNG, row-major and interleaved, as a flat list."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert zlib.crc32(kind + body) == crc, "bad PNG chunk CRC"
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    width, height, depth, color, _, _, interlace = ihdr
    assert depth == 8 and interlace == 0
    channels = {0: 1, 4: 2, 2: 3, 6: 4}[color]
    raw = zlib.decompress(idat)
    stride = width * channels
    out, prev = [], [0] * stride
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = list(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
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
        out.extend(line)
        prev = line
    return width, height, channels, out


def plugin_tags(acc, plugin):
    """{tag: content} of the values owned by `plugin`, {} when there are none."""
    try:
        return acc.PluginTagToContent(plugin)
    except KeyError:
        return {}


def read_run(acc):
    acc.Reload()
    tags = acc.Tags()
    run = {"scalars": {}, "histograms": {}, "text": {}, "images": {}, "graph": None, "hparams": {}}
    for tag in tags["scalars"]:
        run["scalars"][tag] = [[e.step, e.value] for e in acc.Scalars(tag)]
    for tag in tags["histograms"]:
        run["histograms"][tag] = [
            {
                "step": e.step,
                "min": e.histogram_value.min,
                "max": e.histogram_value.max,
                "num": e.histogram_value.num,
                "sum": e.histogram_value.sum,
                "sum_squares": e.histogram_value.sum_squares,
                "bucket_limit": list(e.histogram_value.bucket_limit),
                "bucket": list(e.histogram_value.bucket),
            }
            for e in acc.Histograms(tag)
        ]
    for tag in tags["images"]:
        imgs = []
        for e in acc.Images(tag):
            w, h, c, px = decode_png(e.encoded_image_string)
            assert (w, h) == (e.width, e.height), "PNG size differs from the summary's"
            imgs.append({"step": e.step, "width": w, "height": h, "channels": c, "pixels": px})
        run["images"][tag] = imgs
    text_tags = plugin_tags(acc, "text")
    for tag in text_tags:
        run["text"][tag] = [
            [e.step, [s.decode("utf-8") for s in e.tensor_proto.string_val]]
            for e in acc.Tensors(tag)
        ]
    hp_tags = plugin_tags(acc, "hparams")
    for tag, content in hp_tags.items():
        data = plugin_data_pb2.HParamsPluginData.FromString(content)
        run["hparams"][tag] = json_format.MessageToDict(data)
    if tags["graph"]:
        g = acc.Graph()
        run["graph"] = {
            "nodes": [
                {
                    "name": n.name,
                    "op": n.op,
                    "input": list(n.input),
                    "shapes": [
                        [d.size for d in s.dim] for s in n.attr["_output_shapes"].list.shape
                    ],
                }
                for n in g.node
            ]
        }
    return run


def main():
    logdir = sys.argv[1]
    # size_guidance 0 = keep everything
    guidance = {k: 0 for k in (ea.SCALARS, ea.HISTOGRAMS, ea.IMAGES, ea.TENSORS, ea.COMPRESSED_HISTOGRAMS)}
    mux = em.EventMultiplexer(size_guidance=guidance)
    mux.AddRunsFromDirectory(logdir)
    mux.Reload()
    runs = {name: read_run(mux.GetAccumulator(name)) for name in mux.Runs()}
    json.dump({"runs": runs}, sys.stdout)


if __name__ == "__main__":
    main()
