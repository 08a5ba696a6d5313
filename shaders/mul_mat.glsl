// Matrix product Y[t][y_row0 + r] (+)= sum_k W[w_row0 + r][k] * X[t][k] (+ bias[b_off + r]),
// r < M, t < N, for one GGUF weight type: each mul_mat_<type> variant in shaders/variants.txt
// defines TYPE_<type> for this body (engine/vk_matmul.c creates the pipelines and picks the
// specialization per device; the measurements behind it are in its file comment).
//
// Work split. A "row group" of LPR invocations computes RPG consecutive rows (RPD when
// decoding, N = 1) for up to NT tokens. A workgroup holds WG / LPR row groups; workgroup (x + z * num_x, y) covers row tile
// x + z * num_x and token tile y. Every weight decoded is used for all the tile's tokens, so a
// batch reads W once per NT tokens; sums are fp32. Two shapes:
//   - LPR = 1, XBC = 1: one invocation per row (CPU devices: lavapipe). No reduction. lavapipe
//     runs a subgroup as one SIMD vector and turns every storage-buffer load into a scalar loop
//     over the lanes, uniform address or not, so loads are what costs: each word of W is
//     loaded once, by the lane whose row it is, and the 32 X values of a slice are loaded once
//     per subgroup (XPL per lane) and handed round with subgroupBroadcast. Decoding (N = 1)
//     takes whole items (dequant.glsl: a block or half a K super-block, no header loaded
//     twice); batches take 32 columns at a time, which keeps the unrolled body small enough for
//     lavapipe to compile in seconds.
//   - otherwise (GPUs): lanes take 32-column groups in turn, so adjacent lanes read adjacent
//     blocks, X is read directly, and the row group's partial sums meet through subgroupAdd
//     (RED = 1, where the subgroup is the row group) or shared memory (RED = 2, or when the
//     driver ran another subgroup size).
// Decoding (N = 1) is instantiated apart from batches (N > 1, NT tokens per invocation), so a
// token pays for no batch columns. Rows past M and tokens past N are clamped to real ones
// (control flow stays uniform: no lane leaves early, barriers are safe) and never stored.
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
layout(constant_id = 7) const uint RPD = 1;  // rows per row group when N = 1
const uint RMAX = RPD > RPG ? RPD : RPG;

// W: the raw GGUF bytes as 32-bit words. W_TEXEL (the mul_mat_<type>_tex variants, used on
// CPU devices) reads them through a uniform texel buffer: lavapipe loads texels with vector
// gathers but storage buffers one lane at a time (engine/vk_matmul.c has the figures).
#if defined(W_TEXEL4)
layout(binding = 0) uniform usamplerBuffer wtex4;
#define WRD(i) texelFetch(wtex4, int((i) >> 2))[(i) & 3u]
#define W_WORDS (uint(textureSize(wtex4)) * 4u)
#elif defined(W_TEXEL)
layout(binding = 0) uniform usamplerBuffer wtex;
#define WRD(i) texelFetch(wtex, int(i)).x
#define W_WORDS uint(textureSize(wtex))
#else
layout(binding = 0) readonly buffer WBuf { uint w[]; };
#define WRD(i) w[i]
#define W_WORDS uint(w.length())
#endif
layout(binding = 1) readonly buffer XBuf { float x[]; };
layout(binding = 2) buffer YBuf { float y[]; };
layout(binding = 3) readonly buffer BBuf { float bias[]; };

uint w_last; // index of the last word of W, for the loads that may run past a row

#include "dequant.glsl"

const uint XPL = 32u / SGS;                 // X floats per lane per 32-column broadcast slice
const uint RED_SIZE = RED != 0u ? WG * RMAX * NT : 1u;
shared float red[RED_SIZE];

// X[t][k] for k < K (float tails clamp to the last column; their weights are 0).
float xload(uint xb, uint k)
{
    return x[xb + (ITEM_TAIL != 0 ? min(k, pc.K - 1u) : k)];
}

// Sums acc over the LPR lanes of each row group; the total ends up in lane 0's acc.
void reduce(inout float acc[RMAX][NT], const uint ntc, const uint nr, uint lid, uint lane)
{
    // subgroupAdd only where the subgroup is the row group (a driver may pick another size)
    const bool sg_red = RED == 1u;
    if (sg_red) {
        if (gl_SubgroupSize == LPR) {
            [[unroll]] for (uint r = 0u; r < nr; r++)
                [[unroll]] for (uint t = 0u; t < ntc; t++)
                    acc[r][t] = subgroupAdd(acc[r][t]);
            return;
        }
    }
    [[unroll]] for (uint r = 0u; r < nr; r++)
        [[unroll]] for (uint t = 0u; t < ntc; t++)
            red[(r * NT + t) * WG + lid] = acc[r][t];
    barrier();
    for (uint s = LPR / 2u; s > 0u; s >>= 1) {
        if (lane < s)
            [[unroll]] for (uint r = 0u; r < nr; r++)
                [[unroll]] for (uint t = 0u; t < ntc; t++)
                    red[(r * NT + t) * WG + lid] += red[(r * NT + t) * WG + lid + s];
        barrier();
    }
    [[unroll]] for (uint r = 0u; r < nr; r++)
        [[unroll]] for (uint t = 0u; t < ntc; t++)
            acc[r][t] = red[(r * NT + t) * WG + lid];
}

// acc[r][t] += v[r][j] * X[t][k0 + j], j < 32, every lane of the subgroup on its own rows and
// the same columns: each lane loads XPL of the 32 values of X, subgroupBroadcast hands them round.
void fma_broadcast(inout float acc[RMAX][NT], float v[RMAX][32], uint xb[NT], uint k0,
                   const uint ntc, const uint nr)
{
    uint sl = gl_SubgroupInvocationID * XPL;
    [[unroll]] for (uint t = 0u; t < ntc; t++) {
        float xs[XPL];
        [[unroll]] for (uint i = 0u; i < XPL; i++)
            xs[i] = xload(xb[t], k0 + sl + i);
        [[unroll]] for (uint j = 0u; j < 32u; j++) {
            float xv = subgroupBroadcast(xs[j % XPL], j / XPL);
            [[unroll]] for (uint r = 0u; r < nr; r++)
                acc[r][t] += v[r][j] * xv;
        }
    }
}

// One workgroup's tile with ntc tokens per invocation (a constant once inlined). Conditions
// on specialization constants stay apart from run-time values (no `&&` mixing them): mixed,
// glslang emits short-circuit branches that lavapipe then compiles, dead path and all.
void run(const uint ntc)
{
    uint nr = ntc == 1u ? RPD : RPG;
    uint rows_per_wg = WG / LPR * nr;
    uint n_tiles = (pc.M + rows_per_wg - 1u) / rows_per_wg;
    uint tile = gl_WorkGroupID.z * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (tile >= n_tiles) // whole workgroup: the grid was rounded up to a rectangle
        return;
    uint lid = gl_LocalInvocationID.x, lane = lid % LPR;
    uint row0 = tile * rows_per_wg + lid / LPR * nr;
    uint t0 = gl_WorkGroupID.y * ntc;
    uint row_bytes = ROW_BYTES(pc.K);
    w_last = W_WORDS - 1u;

    uint rb[RMAX];
    [[unroll]] for (uint r = 0u; r < nr; r++)
        rb[r] = (pc.w_row0 + min(row0 + r, pc.M - 1u)) * row_bytes;
    uint xb[NT];
    [[unroll]] for (uint t = 0u; t < ntc; t++)
        xb[t] = pc.x_off + min(t0 + t, pc.N - 1u) * pc.x_stride;
    float acc[RMAX][NT];
    [[unroll]] for (uint r = 0u; r < nr; r++)
        [[unroll]] for (uint t = 0u; t < ntc; t++)
            acc[r][t] = 0.0;

    uint n_items = (pc.K + ITEM - 1u) / ITEM;
    const bool per_row = LPR == 1u && XBC != 0u;
    if (per_row) {
        if (ntc == 1u) {
            // decode: whole items, so each word of W is loaded once
            for (uint it = 0u; it < n_items; it++) {
                float v[RMAX][ITEM];
                [[unroll]] for (uint r = 0u; r < nr; r++)
                    decode_item(rb[r], it, v[r]);
                [[unroll]] for (uint g = 0u; g < ITEM / 32u; g++) {
                    float vg[RMAX][32];
                    [[unroll]] for (uint r = 0u; r < nr; r++)
                        [[unroll]] for (uint j = 0u; j < 32u; j++)
                            vg[r][j] = v[r][32u * g + j];
                    fma_broadcast(acc, vg, xb, it * ITEM + 32u * g, ntc, nr);
                }
            }
        } else {
            // batch: 32 columns at a time keep the unrolled body (nr * ntc * 32 products)
            // small enough for lavapipe to compile in seconds; the repeated header loads are
            // shared by ntc tokens
            for (uint it = 0u; it < n_items; it++)
                [[dont_unroll]] for (uint g = 0u; g < ITEM / 32u; g++) {
                    float v[RMAX][32];
                    [[unroll]] for (uint r = 0u; r < nr; r++)
                        decode_group(rb[r], it, g, v[r]);
                    fma_broadcast(acc, v, xb, it * ITEM + 32u * g, ntc, nr);
                }
        }
    } else {
        // lanes take 32-column groups in turn: adjacent lanes read adjacent blocks
        uint n_units = n_items * (ITEM / 32u);
        for (uint u = lane; u < n_units; u += LPR) {
            uint it = u / (ITEM / 32u), g = u % (ITEM / 32u), k0 = u * 32u;
            float v[RMAX][32];
            [[unroll]] for (uint r = 0u; r < nr; r++)
                decode_group(rb[r], it, g, v[r]);
            [[unroll]] for (uint t = 0u; t < ntc; t++)
                [[unroll]] for (uint j = 0u; j < 32u; j++) {
                    float xv = xload(xb[t], k0 + j);
                    [[unroll]] for (uint r = 0u; r < nr; r++)
                        acc[r][t] += v[r][j] * xv;
                }
        }
    }

    if (LPR > 1u)
        reduce(acc, ntc, nr, lid, lane);
    if (lane != 0u)
        return;
    [[unroll]] for (uint r = 0u; r < nr; r++) {
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
