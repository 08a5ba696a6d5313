// RMSNorm, one workgroup per row: Y[r] = X[r] / sqrt(mean(X[r]^2) + eps) * W (engine/vk_ops.h).
// Body of the rms_norm (subgroup reductions) and rms_norm_shmem variants (for devices
// without subgroup arithmetic). Spec constants: 0 = workgroup size, 1 = reduction mode
// (shaders/reduce.glsl). Rows past 65535 wrap into gl_WorkGroupID.y, so per-head norms of long
// prompts fit in one dispatch.
#ifndef RED_NO_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#define PUSH_RMS_NORM
#include "ops.glsl"

layout(local_size_x_id = 0) in;
#ifndef RED_NO_SUBGROUP
layout(constant_id = 1) const uint RED_MODE = 0u;
#endif
#include "reduce.glsl"

// X and Y may be the same buffer (in place): every element is read, then written, by the same
// invocation, so the two views never race.
layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) readonly buffer W { float w[]; };
layout(std430, set = 0, binding = 2) writeonly buffer Y { float y[]; };

void main()
{
    uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (row >= pc.rows) // the whole workgroup leaves together: no barrier is skipped by half
        return;
    uint lid = gl_LocalInvocationID.x;
    uint xb = pc.x_off + row * pc.x_stride;
    float ss = 0.0;
    for (uint i = lid; i < pc.n; i += WG) {
        float v = x[xb + i];
        ss += v * v;
    }
    ss = wg_sum(ss);
    float scale = 1.0 / sqrt(ss / float(pc.n) + pc.eps);
    uint yb = pc.y_off + row * pc.y_stride;
    for (uint i = lid; i < pc.n; i += WG)
        y[yb + i] = x[xb + i] * scale * w[pc.w_off + i];
}
