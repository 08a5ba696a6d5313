// O = silu(G) * U elementwise over rows (engine/vk_ops.h), grid (n / WG, rows). O may be G or U
// (in place): each element is read and written by one invocation. Spec constant 0 = workgroup
// size.
#version 450
#define PUSH_SWIGLU
#include "ops.glsl"

layout(local_size_x_id = 0) in;

layout(std430, set = 0, binding = 0) readonly buffer G { float g[]; };
layout(std430, set = 0, binding = 1) readonly buffer U { float u[]; };
layout(std430, set = 0, binding = 2) writeonly buffer O { float o[]; };

void main()
{
    uint r = gl_WorkGroupID.y, i = gl_GlobalInvocationID.x;
    if (i >= pc.n)
        return;
    float gv = g[pc.g_off + r * pc.g_stride + i];
    float uv = u[pc.u_off + r * pc.u_stride + i];
    // exp(-g) overflows to +inf for g < -88 and the quotient is then -0, as on the CPU
    o[pc.o_off + r * pc.o_stride + i] = gv / (1.0 + exp(-gv)) * uv;
}
