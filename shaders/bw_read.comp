#version 450
// Streaming read of a large buffer, to measure the device's own read bandwidth (sizeup bench
// reports decode speed as a share of it). MODE 0: each invocation reads one contiguous range
// (how a CPU driver such as lavapipe streams best); MODE 1: consecutive invocations read
// consecutive 16-byte words (coalesced, how GPUs stream best). The XOR result is written so
// the reads cannot be optimised away.
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint MODE = 0;

layout(std430, binding = 0) readonly buffer Src { uvec4 src[]; };
layout(std430, binding = 1) writeonly buffer Dst { uint dst[]; };

layout(push_constant) uniform PushBw {
    uint n_vec4;   // 16-byte words in src
    uint n_inv;    // invocations in the dispatch
} pc;

void main()
{
    uint gid = gl_GlobalInvocationID.x;
    uvec4 acc = uvec4(0);
    if (MODE == 0) {
        uint per = pc.n_vec4 / pc.n_inv;
        uint base = gid * per;
        for (uint i = 0; i < per; i++)
            acc ^= src[base + i];
    } else {
        for (uint i = gid; i < pc.n_vec4; i += pc.n_inv)
            acc ^= src[i];
    }
    dst[gid] = acc.x ^ acc.y ^ acc.z ^ acc.w;
}
