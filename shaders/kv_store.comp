// Copies rows of n float32 values into the f16 KV cache at row step[0] + t (engine/vk_ops.h):
// one invocation per cache word (two values), grid (words / WG, tokens). Used for V; K is
// stored by rope.comp. Spec constant 0 = workgroup size.
#version 450
#define PUSH_KV_STORE
#include "ops.glsl"
#include "f16.glsl"

layout(local_size_x_id = 0) in;

// read as bits, so NaN payloads reach the cache as the CPU would store them
layout(std430, set = 0, binding = 0) readonly buffer X { uint x[]; };
layout(std430, set = 0, binding = 1) readonly buffer Step { uint step[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Cache { uint cache[]; };

void main()
{
    uint t = gl_WorkGroupID.y, w = gl_GlobalInvocationID.x, row_w = pc.n / 2u;
    if (t >= step[1] || w >= row_w)
        return;
    uint pos = step[0] + t;
    // a row past the end of the buffer (a bad position in step) is not written
    uint off_w = pc.cache_off / 2u, len_w = cache.length();
    if (off_w > len_w || pos >= (len_w - off_w) / row_w)
        return;
    uint xb = pc.x_off + t * pc.x_stride + 2u * w;
    uint lo = f32_bits_to_f16(x[xb]), hi = f32_bits_to_f16(x[xb + 1u]);
    cache[off_w + pos * row_w + w] = lo | (hi << 16);
}
