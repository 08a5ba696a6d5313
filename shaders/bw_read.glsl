// Streaming read of a large buffer, to measure the device's own read bandwidth (sizeup bench
// reports decode speed as a share of it). Built as the bw_read variant (a storage buffer read as
// 16-byte words) and bw_read_tex (BW_TEXEL: a uniform texel buffer, as the matrix kernels
// read weights on CPU devices; its view's format, R32 or RGBA32, decides the word size). MODE 0: each invocation reads one
// contiguous range (how a CPU driver such as lavapipe streams best); MODE 1: consecutive
// invocations read consecutive words (coalesced, how GPUs stream best). The XOR result is
// written so the reads cannot be optimised away.
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint MODE = 0;

#ifdef BW_TEXEL
layout(binding = 0) uniform usamplerBuffer src;
#define LOAD(i) texelFetch(src, int(i))
#else
layout(std430, binding = 0) readonly buffer Src { uvec4 src[]; };
#define LOAD(i) src[i]
#endif
layout(std430, binding = 1) writeonly buffer Dst { uint dst[]; };

layout(push_constant) uniform PushBw {
    uint n_units;  // words (texels) in src
    uint n_inv;    // invocations in the dispatch
} pc;

void main()
{
    uint gid = gl_GlobalInvocationID.x;
    uvec4 acc = uvec4(0);
    if (MODE == 0) {
        uint per = pc.n_units / pc.n_inv;
        uint base = gid * per;
        for (uint i = 0; i < per; i++)
            acc ^= LOAD(base + i);
    } else {
        for (uint i = gid; i < pc.n_units; i += pc.n_inv)
            acc ^= LOAD(i);
    }
    dst[gid] = acc.x ^ acc.y ^ acc.z ^ acc.w;
}
