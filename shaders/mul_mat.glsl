// Matrix product Y[t][y_row0 + r] (+)= sum_k W[w_row0 + r][k] * X[t][k] (+ bias[b_off + r]),
// r < M, t < N, for one GGUF weight type: a mul_mat_<type>.comp defines TYPE_<type> and
// includes this file (engine/vk_matmul.c creates the pipelines and says which device gets which
// specialization).
//
// Work split. A "row group" of LPR invocations computes RPG consecutive rows for up to NT
// tokens: its lanes take the row's items (dequant.glsl: a block, half a super-block, or 32
// float columns) in turn, decode each item once for all RPG rows, and use every decoded weight
// for all the tokens of the tile, so a batch reads W once per NT tokens. A workgroup holds
// WG / LPR row groups; workgroup (x + z * num_x, y) covers row tile x + z * num_x and token tile
// y. Two shapes are in use:
//   - LPR = 1, one invocation per row (CPU devices, lavapipe): no reduction at all. Every lane
//     needs every x, so the lanes of a subgroup load a 32-column slice of X once between them
//     and pass it round with subgroupBroadcast (XBC = 1): in lavapipe each lane's storage
//     load is a scalar loop iteration, so a broadcast is far cheaper than 8 identical loads.
//   - LPR = subgroup size (GPUs): a subgroup per row group, adjacent lanes on adjacent items
//     (coalesced), partial sums combined with subgroupAdd (RED = 1), or through shared memory
//     (RED = 2, any LPR that is a power of two) where subgroup arithmetic is missing or the
//     subgroup is not the row group after all.
// Decoding (N = 1) is instantiated separately from batches (N > 1, NT tokens per invocation),
// so a token pays for no unused batch columns. Rows past M and tokens past N are clamped to
// real ones (control flow stays uniform, no lane leaves early) and never stored.
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_KHR_shader_subgroup_ballot : require

#define PUSH_MUL_MAT
#include "ops.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 8;   // invocations per workgroup
layout(constant_id = 1) const uint LPR = 1;  // lanes per row group: 1 or a power of two <= WG
layout(constant_id = 2) const uint RPG = 1;  // rows per row group
layout(constant_id = 3) const uint NT = 4;   // tokens per invocation when N > 1
layout(constant_id = 4) const uint SGS = 8;  // subgroup size the broadcast of X assumes
layout(constant_id = 5) const uint XBC = 0;  // 1: LPR = 1 lanes share X through broadcasts
layout(constant_id = 6) const uint RED = 0;  // 0: none (LPR = 1), 1: subgroupAdd, 2: shared

layout(binding = 0) readonly buffer WBuf { uint w[]; };  // raw GGUF bytes
layout(binding = 1) readonly buffer XBuf { float x[]; };
layout(binding = 2) buffer YBuf { float y[]; };
layout(binding = 3) readonly buffer BBuf { float bias[]; };

uint w_last; // index of the last word of W, for the loads that may run past a row

#include "dequant.glsl"

const uint XPL = 32u / SGS;                 // X floats per lane per 32-column broadcast slice
const uint RED_SIZE = RED != 0u ? WG * RPG * NT : 1u;
shared float red[RED_SIZE];

// X[t][k] for k < K (float tails clamp to the last column; their weights are 0).
float xload(uint xb, uint k)
{
    return x[xb + (ITEM_TAIL != 0 ? min(k, pc.K - 1u) : k)];
}

// Sums acc over the LPR lanes of each row group; the total ends up in lane 0's acc.
void reduce(inout float acc[RPG][NT], const uint ntc, uint lid, uint lane)
{
    if (RED == 1u && gl_SubgroupSize == LPR) {
        [[unroll]] for (uint r = 0u; r < RPG; r++)
            [[unroll]] for (uint t = 0u; t < ntc; t++)
                acc[r][t] = subgroupAdd(acc[r][t]);
        return;
    }
    [[unroll]] for (uint r = 0u; r < RPG; r++)
        [[unroll]] for (uint t = 0u; t < ntc; t++)
            red[(r * NT + t) * WG + lid] = acc[r][t];
    barrier();
    for (uint s = LPR / 2u; s > 0u; s >>= 1) {
        if (lane < s)
            [[unroll]] for (uint r = 0u; r < RPG; r++)
                [[unroll]] for (uint t = 0u; t < ntc; t++)
                    red[(r * NT + t) * WG + lid] += red[(r * NT + t) * WG + lid + s];
        barrier();
    }
    [[unroll]] for (uint r = 0u; r < RPG; r++)
        [[unroll]] for (uint t = 0u; t < ntc; t++)
            acc[r][t] = red[(r * NT + t) * WG + lid];
}

// One workgroup's tile with ntc tokens per invocation (a constant once inlined).
void run(const uint ntc)
{
    const uint rows_per_wg = WG / LPR * RPG;
    uint n_tiles = (pc.M + rows_per_wg - 1u) / rows_per_wg;
    uint tile = gl_WorkGroupID.z * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (tile >= n_tiles) // whole workgroup: the grid was rounded up to a rectangle
        return;
    uint lid = gl_LocalInvocationID.x, lane = lid % LPR;
    uint row0 = tile * rows_per_wg + lid / LPR * RPG;
    uint t0 = gl_WorkGroupID.y * ntc;
    uint row_bytes = pc.K / BLK * BLK_BYTES;
    w_last = uint(w.length()) - 1u;

    uint rb[RPG];
    [[unroll]] for (uint r = 0u; r < RPG; r++)
        rb[r] = (pc.w_row0 + min(row0 + r, pc.M - 1u)) * row_bytes;
    uint xb[NT];
    [[unroll]] for (uint t = 0u; t < ntc; t++)
        xb[t] = pc.x_off + min(t0 + t, pc.N - 1u) * pc.x_stride;
    float acc[RPG][NT];
    [[unroll]] for (uint r = 0u; r < RPG; r++)
        [[unroll]] for (uint t = 0u; t < ntc; t++)
            acc[r][t] = 0.0;

    uint n_items = (pc.K + ITEM - 1u) / ITEM;
    for (uint it = lane; it < n_items; it += LPR) {
        float v[RPG][ITEM];
        [[unroll]] for (uint r = 0u; r < RPG; r++)
            decode_item(rb[r], it, v[r]);
        uint k0 = it * ITEM;
        if (LPR == 1u && XBC != 0u) {
            // each lane loads XPL of the slice's 32 values, then every lane reads all 32
            uint sl = gl_SubgroupInvocationID * XPL;
            [[unroll]] for (uint g = 0u; g < ITEM / 32u; g++)
                [[unroll]] for (uint t = 0u; t < ntc; t++) {
                    float xs[XPL];
                    [[unroll]] for (uint i = 0u; i < XPL; i++)
                        xs[i] = xload(xb[t], k0 + 32u * g + sl + i);
                    [[unroll]] for (uint j = 0u; j < 32u; j++) {
                        float xv = subgroupBroadcast(xs[j % XPL], j / XPL);
                        [[unroll]] for (uint r = 0u; r < RPG; r++)
                            acc[r][t] += v[r][32u * g + j] * xv;
                    }
                }
        } else {
            [[unroll]] for (uint t = 0u; t < ntc; t++)
                [[unroll]] for (uint j = 0u; j < ITEM; j++) {
                    float xv = xload(xb[t], k0 + j);
                    [[unroll]] for (uint r = 0u; r < RPG; r++)
                        acc[r][t] += v[r][j] * xv;
                }
        }
    }

    if (LPR > 1u)
        reduce(acc, ntc, lid, lane);
    if (lane != 0u)
        return;
    [[unroll]] for (uint r = 0u; r < RPG; r++) {
        uint row = row0 + r;
        [[unroll]] for (uint t = 0u; t < ntc; t++) {
            if (row >= pc.M || t0 + t >= pc.N)
                continue;
            uint yi = pc.y_off + (t0 + t) * pc.y_stride + pc.y_row0 + row;
            float s = acc[r][t];
            if ((pc.flags & MM_BIAS) != 0u)
                s += bias[pc.b_off + row];
            if ((pc.flags & MM_ACCUMULATE) != 0u)
                s += y[yi];
            y[yi] = s;
        }
    }
}

void main()
{
    if (pc.N == 1u)
        run(1u);
    else
        run(NT);
}
