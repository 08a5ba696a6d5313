// RoPE in place on one head of one token per workgroup (grid: n_heads x tokens), optionally
// storing the rotated head as f16 into the KV cache row step[0] + t, so K needs no separate
// store (engine/vk_ops.h). Spec constant 0 = workgroup size.
//
// Angles: theta = pos * inv_i, inv_i = freq_scale * base^(-2i/n_rot) / factor_i. The CPU
// reference forms that product exactly (in double) and takes cos/sin of it; in float32 a
// position of several thousand loses ~1e-4 rad to the rounding of the product alone, and GPU
// cos/sin of a large argument are not accurate. So the product is kept exact as a sum of float
// parts (both factors split into 12-bit halves), reduced by multiples of pi/2 with Cody-Waite
// constants, and cos/sin only ever see |r| <= pi/4; `precise` keeps the compiler from fusing
// or reassociating any of it. What remains is inv_i itself: float32 exp2/log2 land within an
// ulp or two of the CPU's correctly rounded value, and pos times one ulp of inv is ~5e-4 rad
// at position 8k, so NMSE against the CPU grows with the position squared: ~2e-8 at 8k.
//
// Ownership: an invocation writes X only for dims whose rotation partners it also owns, and
// stores whole cache words (two halves) only from dims it owns, so no barrier is needed:
//   normal pairs (2i, 2i+1):            unit i = one pair = one word;
//   NeoX pairs (i, i + n_rot/2), n_rot/2 even: unit u = pairs 2u, 2u+1 = words u, u + n_rot/4;
//   NeoX with n_rot/2 odd (rare):       the pairs chain every word together; one invocation
//                                       rotates the whole head.
// Dims from n_rot to head_dim are left in X as they are and copied to the cache.
#version 450
#define PUSH_ROPE
#include "ops.glsl"
#include "f16.glsl"

layout(local_size_x_id = 0) in;

layout(std430, set = 0, binding = 0) buffer X { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer Factors { float factors[]; };
layout(std430, set = 0, binding = 2) readonly buffer Step { uint step[]; };
layout(std430, set = 0, binding = 3) writeonly buffer Cache { uint cache[]; };

// pi/2 = P1 + P2 + P3 (Cephes' DP1..3 doubled): P1 has 8 significant bits and P2 about 15, so
// k * P1 is exact for k < 2^16 and k * P2 for k < 2^9 (then off by an ulp of a small number).
const float P1 = 1.5703125;
const float P2 = 4.837512969970703125e-4;
const float P3 = 7.54978995489188216e-8;
const float TWO_OVER_PI = 0.636619772367581343;

// (cos, sin) of pos * inv for an integer pos < 2^24.
vec2 cos_sin(uint pos, float inv)
{
    // exact product as t1 + t2 + t3: pos = ph + pl, inv = ih + il, each part 12 bits wide
    float pl = float(pos & 0xfffu), ph = float(pos & 0xfffff000u);
    float ih = uintBitsToFloat(floatBitsToUint(inv) & 0xfffff000u);
    precise float il = inv - ih;
    precise float t1 = ph * ih;
    precise float t2 = ph * il + pl * ih;
    precise float t3 = pl * il;
    // two-sum: hi + lo == t1 + t2 exactly
    precise float hi = t1 + t2;
    precise float bb = hi - t1;
    precise float lo = (t1 - (hi - bb)) + (t2 - bb);
    float k = floor(hi * TWO_OVER_PI + 0.5);
    precise float r = hi - k * P1;
    r = r - k * P2;
    r = r - k * P3;
    r = r + (lo + t3);
    float c = cos(r), s = sin(r);
    switch (uint(k) & 3u) {
    case 0u: return vec2(c, s);
    case 1u: return vec2(-s, c);
    case 2u: return vec2(-c, -s);
    default: return vec2(s, -c);
    }
}

float inv_freq(uint i)
{
    float e = -float(2u * i) / float(pc.n_rot);
    float inv = pc.freq_scale * exp2(e * log2(pc.freq_base));
    if ((pc.flags & ROPE_FACTORS) != 0u)
        inv /= factors[i];
    return inv;
}

// Rotates the pair (a, b) of the head at xb for frequency i, in place; returns the new values.
vec2 rotate(uint xb, uint a, uint b, uint i, uint pos)
{
    vec2 cs = cos_sin(pos, inv_freq(i));
    float x0 = x[xb + a], x1 = x[xb + b];
    vec2 r = vec2(x0 * cs.x - x1 * cs.y, x0 * cs.y + x1 * cs.x);
    x[xb + a] = r.x;
    x[xb + b] = r.y;
    return r;
}

void main()
{
    uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, lid = gl_LocalInvocationID.x;
    if (t >= step[1])
        return;
    uint pos = step[0] + t;
    uint hd = pc.head_dim, half_rot = pc.n_rot / 2u;
    uint xb = pc.x_off + t * pc.x_stride + h * hd;

    // Cache word of this head's first dim in row pos; a row past the end of the buffer (a bad
    // position in step) is not written rather than written out of bounds.
    uint row_w = pc.n_heads * hd / 2u, off_w = pc.cache_off / 2u, len_w = cache.length();
    bool store = (pc.flags & ROPE_STORE) != 0u && off_w <= len_w && pos < (len_w - off_w) / row_w;
    uint cw = off_w + pos * row_w + h * hd / 2u;

    bool neox = (pc.flags & ROPE_NEOX) != 0u;
    bool chained = neox && (half_rot & 1u) != 0u;
    uint units = chained ? 1u : (neox ? half_rot / 2u : half_rot);
    for (uint u = lid; u < units; u += gl_WorkGroupSize.x) {
        if (!neox) {
            vec2 r = rotate(xb, 2u * u, 2u * u + 1u, u, pos);
            if (store)
                cache[cw + u] = pack_f16x2(r.x, r.y);
        } else if (!chained) {
            vec2 a = rotate(xb, 2u * u, 2u * u + half_rot, 2u * u, pos);
            vec2 b = rotate(xb, 2u * u + 1u, 2u * u + 1u + half_rot, 2u * u + 1u, pos);
            if (store) {
                cache[cw + u] = pack_f16x2(a.x, b.x);
                cache[cw + half_rot / 2u + u] = pack_f16x2(a.y, b.y);
            }
        } else {
            for (uint i = 0u; i < half_rot; i++)
                rotate(xb, i, i + half_rot, i, pos);
            for (uint w = 0u; store && w < half_rot; w++) // reads back its own writes
                cache[cw + w] = pack_f16x2(x[xb + 2u * w], x[xb + 2u * w + 1u]);
        }
    }
    if (!store)
        return;
    for (uint w = half_rot + lid; w < hd / 2u; w += gl_WorkGroupSize.x)
        cache[cw + w] = pack_f16x2(x[xb + 2u * w], x[xb + 2u * w + 1u]);
}
