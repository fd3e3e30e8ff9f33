#!/usr/bin/env python3
"""Independent float64 check of the C++ reference model (src/core/model_ref.cpp), numpy-free.

Rebuilds make_random_ref_weights' weights from the same portable generator (splitmix64 streams
per tensor, bf16-rounded values), runs the model the way Hugging Face's LlamaForCausalLM /
Qwen2ForCausalLM write it (rotate_half RoPE, repeat_kv, causal softmax, SwiGLU) in float64 with no
intermediate rounding, and writes model_ref_golden.h: a sample of logits that
model_ref_test.cpp compares the C++ float-only path with, within a stated tolerance.

  python3 tests/core/model_ref_check.py > tests/core/model_ref_golden.h
"""
import math
import struct
import sys

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def f32(x):
    return struct.unpack('<f', struct.pack('<f', x))[0]


def bf16(x):
    """Round a float to float32, then to bf16 (nearest, ties to even), as bf16_from_float."""
    bits = struct.unpack('<I', struct.pack('<f', x))[0]
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return struct.unpack('<f', struct.pack('<I', bits))[0]


class TensorRandom:
    def __init__(self, seed, tensor_id):
        self.state = (seed ^ ((GOLDEN * (tensor_id + 1)) & MASK64)) & MASK64

    def next(self):
        self.state = (self.state + GOLDEN) & MASK64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def symmetric(self, bound):
        u = (self.next() >> 40) * 2.0**-24
        return bf16((2.0 * u - 1.0) * bound)


def rand_floats(seed, tid, n, bound):
    r = TensorRandom(seed, tid)
    return [r.symmetric(bound) for _ in range(n)]


def rand_bf16(seed, tid, n, center, bound):
    r = TensorRandom(seed, tid)
    return [bf16(f32(center + r.symmetric(bound))) for _ in range(n)]


def matrix(flat, rows, cols):
    return [flat[i * cols:(i + 1) * cols] for i in range(rows)]


def make_weights(c, seed):
    h, q, kv, inter = c['hidden'], c['heads'] * c['head_dim'], c['kv_heads'] * c['head_dim'], c['inter']
    in_h, in_q, in_i = f32(1 / math.sqrt(h)), f32(1 / math.sqrt(q)), f32(1 / math.sqrt(inter))
    w = {'embed': matrix(rand_bf16(seed, 0, c['vocab'] * h, 0.0, 1.0), c['vocab'], h),
         'norm': rand_bf16(seed, 1, h, 1.0, 0.2)}
    w['lm_head'] = w['embed'] if c['tied'] else matrix(
        rand_bf16(seed, 2, c['vocab'] * h, 0.0, in_h), c['vocab'], h)

    def lin(tid, rows, cols, bound):
        return matrix(rand_floats(seed, tid, rows * cols, bound), rows, cols)

    def bias(tid, n, present):
        return rand_floats(seed, tid, n, 0.1) if present else [0.0] * n

    layers = []
    for i in range(c['layers']):
        b = 16 + i * 32
        layers.append({
            'ln1': rand_bf16(seed, b + 0, h, 1.0, 0.2),
            'q': lin(b + 1, q, h, in_h), 'k': lin(b + 2, kv, h, in_h), 'v': lin(b + 3, kv, h, in_h),
            'qb': bias(b + 4, q, c['qkv_bias']), 'kb': bias(b + 5, kv, c['qkv_bias']),
            'vb': bias(b + 6, kv, c['qkv_bias']),
            'o': lin(b + 7, h, q, in_q), 'ob': bias(b + 8, h, c['o_bias']),
            'ln2': rand_bf16(seed, b + 9, h, 1.0, 0.2),
            'gate': lin(b + 10, inter, h, in_h), 'up': lin(b + 11, inter, h, in_h),
            'gb': bias(b + 12, inter, c['mlp_bias']), 'ub': bias(b + 13, inter, c['mlp_bias']),
            'down': lin(b + 14, h, inter, in_i), 'db': bias(b + 15, h, c['mlp_bias']),
        })
    w['layers'] = layers
    return w


def linear(x, w, b):
    return [sum(xi * wi for xi, wi in zip(x, row)) + bb for row, bb in zip(w, b)]


def rms_norm(x, w, eps):
    r = 1.0 / math.sqrt(sum(v * v for v in x) / len(x) + eps)
    return [v * r * wi for v, wi in zip(x, w)]


def inv_freq(c):
    d, theta = c['head_dim'], c['theta']
    inv = [1.0 / theta ** (2 * i / d) for i in range(d // 2)]
    sc = c.get('llama3')
    if sc:
        factor, low, high, old = sc
        low_wl, high_wl = old / low, old / high
        out = []
        for f in inv:
            wl = 2 * math.pi / f
            if wl < high_wl:
                out.append(f)
            elif wl > low_wl:
                out.append(f / factor)
            else:
                s = (old / wl - low) / (high - low)
                out.append((1 - s) * f / factor + s * f)
        inv = out
    return inv


def rope(x, pos, inv):
    half = len(x) // 2
    cos = [math.cos(pos * f) for f in inv] * 2
    sin = [math.sin(pos * f) for f in inv] * 2
    rot = [-v for v in x[half:]] + x[:half]  # rotate_half
    return [a * cc + r * ss for a, r, cc, ss in zip(x, rot, cos, sin)]


def forward(c, w, tokens):
    d, hq, hkv = c['head_dim'], c['heads'], c['kv_heads']
    rep = hq // hkv
    inv = inv_freq(c)
    hs = [list(w['embed'][t]) for t in tokens]
    for L in w['layers']:
        ks, vs, outs = [], [], []
        qs = []
        for p, x in enumerate(hs):
            xn = rms_norm(x, L['ln1'], c['eps'])
            q = linear(xn, L['q'], L['qb'])
            k = linear(xn, L['k'], L['kb'])
            v = linear(xn, L['v'], L['vb'])
            qs.append([rope(q[h * d:(h + 1) * d], p, inv) for h in range(hq)])
            ks.append([rope(k[h * d:(h + 1) * d], p, inv) for h in range(hkv)])
            vs.append([v[h * d:(h + 1) * d] for h in range(hkv)])
        for p in range(len(hs)):
            row = []
            for h in range(hq):
                g = h // rep  # repeat_kv
                sc = [sum(a * b for a, b in zip(qs[p][h], ks[j][g])) / math.sqrt(d)
                      for j in range(p + 1)]
                m = max(sc)
                e = [math.exp(s - m) for s in sc]
                z = sum(e)
                row += [sum(e[j] * vs[j][g][i] for j in range(p + 1)) / z for i in range(d)]
            outs.append(row)
        new = []
        for x, a in zip(hs, outs):
            x = [u + v for u, v in zip(x, linear(a, L['o'], L['ob']))]
            xn = rms_norm(x, L['ln2'], c['eps'])
            g = linear(xn, L['gate'], L['gb'])
            u = linear(xn, L['up'], L['ub'])
            act = [gi / (1 + math.exp(-gi)) * ui for gi, ui in zip(g, u)]
            new.append([s + t for s, t in zip(x, linear(act, L['down'], L['db']))])
        hs = new
    zero = [0.0] * c['vocab']
    return [linear(rms_norm(x, w['norm'], c['eps']), w['lm_head'], zero) for x in hs]


# The configs and sampling must match model_ref_test.cpp (GoldenConfig*).
CONFIGS = {
    'llama3_g3': dict(hidden=128, inter=256, heads=6, kv_heads=2, head_dim=64, layers=2, vocab=256,
                      eps=1e-5, theta=500000.0, llama3=(8.0, 1.0, 4.0, 32), tied=False,
                      qkv_bias=True, o_bias=True, mlp_bias=True, seed=2024,
                      tokens=[17, 200, 3, 99, 254, 42]),
    'qwen2_g2_tied': dict(hidden=96, inter=160, heads=4, kv_heads=2, head_dim=32, layers=2,
                          vocab=320, eps=1e-6, theta=1000000.0, llama3=None, tied=True,
                          qkv_bias=True, o_bias=False, mlp_bias=False, seed=77,
                          tokens=[5, 319, 64, 0, 128]),
}
STRIDE = 4  # every 4th vocabulary entry of each sampled row


def main():
    out = sys.stdout
    out.write('// Generated by tests/core/model_ref_check.py (float64, HF formulation); do not edit.\n'
              '// Logits rows 0, 2 and T-1, vocabulary entries 0, 4, 8, ... of each golden config.\n'
              '#pragma once\n\nnamespace slidesparse::golden {\n\n')
    for name, c in CONFIGS.items():
        logits = forward(c, make_weights(c, c['seed']), c['tokens'])
        t = len(c['tokens'])
        for r in (0, 2, t - 1):
            vals = logits[r][::STRIDE]
            out.write('inline constexpr double k%s_row%d[] = {\n' % (
                ''.join(p.capitalize() for p in name.split('_')), r))
            for i in range(0, len(vals), 6):
                out.write('    ' + ', '.join('%.9g' % v for v in vals[i:i + 6]) + ',\n')
            out.write('};\n')
        out.write('\n')
    out.write('}  // namespace slidesparse::golden\n')


if __name__ == '__main__':
    main()
