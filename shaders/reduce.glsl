// Workgroup-wide sum and max for the kernels that give one row (or one head) to a workgroup.
// The includer declares `layout(local_size_x_id = 0) in;` and, unless it defines
// RED_NO_SUBGROUP, `layout(constant_id = 1) const uint RED_MODE`. engine/vk_ops.c picks the mode
// per device:
//   RED_SHARED (0)    tree in shared memory, a barrier per level; needs no subgroup support
//                     (the *_shmem shader variants define RED_NO_SUBGROUP and always use it);
//                     the workgroup size must be a power of two.
//   RED_SUBGROUP (1)  subgroupAdd/Max, then one partial per subgroup through shared memory and
//                     two barriers; correct whatever subgroup size the driver picks.
//   RED_ONE_SG (2)    the whole workgroup is one subgroup (lavapipe with WG = its 8 lanes):
//                     subgroup operations only, no workgroup barrier anywhere, because lavapipe
//                     runs a shader that has one as coroutines, which costs more than the work.
// Every helper ends with the workgroup synchronised, so calls may follow one another freely;
// wg_sync() is the barrier to use around the includer's own shared-memory traffic. The subgroup
// extensions (GL_KHR_shader_subgroup_basic, _arithmetic) are enabled by the including body,
// since #extension must come before any declaration.

#define RED_SHARED 0u
#define RED_SUBGROUP 1u
#define RED_ONE_SG 2u

#ifdef RED_NO_SUBGROUP
const uint RED_MODE = RED_SHARED;
#endif

const uint WG = gl_WorkGroupSize.x;

shared float red_sh[WG];

void wg_sync()
{
#ifndef RED_NO_SUBGROUP
    if (RED_MODE == RED_ONE_SG) {
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        return;
    }
#endif
    barrier();
}

float wg_sum(float v)
{
#ifndef RED_NO_SUBGROUP
    if (RED_MODE != RED_SHARED) {
        v = subgroupAdd(v);
        if (RED_MODE == RED_ONE_SG)
            return v;
        if (subgroupElect())
            red_sh[gl_SubgroupID] = v;
        barrier();
        float s = 0.0;
        for (uint i = 0u; i < gl_NumSubgroups; i++)
            s += red_sh[i];
        barrier();
        return s;
    }
#endif
    uint lid = gl_LocalInvocationID.x;
    red_sh[lid] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s)
            red_sh[lid] += red_sh[lid + s];
        barrier();
    }
    float r = red_sh[0];
    barrier();
    return r;
}

float wg_max(float v)
{
#ifndef RED_NO_SUBGROUP
    if (RED_MODE != RED_SHARED) {
        v = subgroupMax(v);
        if (RED_MODE == RED_ONE_SG)
            return v;
        if (subgroupElect())
            red_sh[gl_SubgroupID] = v;
        barrier();
        float m = red_sh[0];
        for (uint i = 1u; i < gl_NumSubgroups; i++)
            m = max(m, red_sh[i]);
        barrier();
        return m;
    }
#endif
    uint lid = gl_LocalInvocationID.x;
    red_sh[lid] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1u) {
        if (lid < s)
            red_sh[lid] = max(red_sh[lid], red_sh[lid + s]);
        barrier();
    }
    float r = red_sh[0];
    barrier();
    return r;
}
