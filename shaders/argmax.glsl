// Greedy sampling on the device: out[0] = index of the largest of X[x_off .. x_off + n), ties
// to the lowest index (engine/vk_ops.h). One workgroup loops over the whole vector (a
// vocabulary of 256k floats is one pass of a megabyte); each invocation keeps its best, then the
// workgroup merges them. NaNs are never chosen; a vector of NaNs only gives 0.
// Body of the argmax (subgroup reductions) and argmax_shmem variants (shaders/variants.txt). Spec constants:
// 0 = workgroup size, 1 = reduction mode (shaders/reduce.glsl).
#ifndef RED_NO_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#define PUSH_ARGMAX
#include "ops.glsl"

layout(local_size_x_id = 0) in;
#ifndef RED_NO_SUBGROUP
layout(constant_id = 1) const uint RED_MODE = 0u;
#endif
#include "reduce.glsl"

layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Out { uint out_idx[]; };

const uint NONE = 0xffffffffu;

shared uint idx_sh[WG];

// (va, ia) ranks before (vb, ib): a real index beats NONE, then the larger value, then the
// lower index. NONE always carries -inf.
bool better(float va, uint ia, float vb, uint ib)
{
    return ia != NONE && (ib == NONE || va > vb || (va == vb && ia < ib));
}

void main()
{
    uint lid = gl_LocalInvocationID.x;
    float bv = -1.0 / 0.0;
    uint bi = NONE;
    for (uint i = lid; i < pc.n; i += WG) { // ascending, so ">" keeps the first of equals
        float v = x[pc.x_off + i];
        if (!isnan(v) && (bi == NONE || v > bv)) {
            bv = v;
            bi = i;
        }
    }
#ifndef RED_NO_SUBGROUP
    if (RED_MODE != RED_SHARED) {
        float m = subgroupMax(bv);
        uint cand = subgroupMin(bi != NONE && bv == m ? bi : NONE);
        if (RED_MODE == RED_ONE_SG) {
            if (lid == 0u)
                out_idx[0] = cand == NONE ? 0u : cand;
            return;
        }
        if (subgroupElect()) {
            red_sh[gl_SubgroupID] = m;
            idx_sh[gl_SubgroupID] = cand;
        }
        barrier();
        if (lid == 0u) {
            bv = red_sh[0];
            bi = idx_sh[0];
            for (uint s = 1u; s < gl_NumSubgroups; s++)
                if (better(red_sh[s], idx_sh[s], bv, bi)) {
                    bv = red_sh[s];
                    bi = idx_sh[s];
                }
            out_idx[0] = bi == NONE ? 0u : bi;
        }
        return;
    }
#endif
    red_sh[lid] = bv;
    idx_sh[lid] = bi;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s && better(red_sh[lid + s], idx_sh[lid + s], red_sh[lid], idx_sh[lid])) {
            red_sh[lid] = red_sh[lid + s];
            idx_sh[lid] = idx_sh[lid + s];
        }
        barrier();
    }
    if (lid == 0u)
        out_idx[0] = idx_sh[0] == NONE ? 0u : idx_sh[0];
}
