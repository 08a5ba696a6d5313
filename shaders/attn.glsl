// Causal attention over the f16 KV cache (engine/vk_ops.h): grid (n_head, tokens); token t of
// the batch attends to cache rows 0 .. step[0] + t. Two algorithms, picked per device by
// specialization constant 1 (the reduction mode, shaders/reduce.glsl):
//
// Streams (RED_ONE_SG, RED_SUBGROUP; needs subgroup arithmetic). A subgroup walks the cache
// one position at a time: each invocation holds a few words (two dims each) of the key and
// value rows, so a row is read as consecutive words across the invocations, the score is one
// subgroupAdd, and an online softmax keeps the running maximum, sum and output in registers;
// no shared memory, no barrier. One workgroup serves HEADS query heads of the same KV head
// (GQA), so each key and value is loaded once for all of them; the workgroups past
// n_head_kv * ceil(group / HEADS) have nothing to do and leave. With several subgroups
// (RED_SUBGROUP, GPUs) each takes every n-th position and they are merged at the end through
// shared memory. On lavapipe (RED_ONE_SG: the workgroup is one 8-wide subgroup) every load is
// a loop over the lanes, so loading each key and value word exactly once is what matters;
// and it executes unused unrolled slots as if they were used, so engine/vk_ops.c specialises
// HEADS, KW and VW to the model's exact shape.
//
// Tiles (RED_SHARED, and the streams' fallback when a row has more words than the subgroup
// holds: KW or VW too small for the actual subgroup size). One workgroup per query head walks
// the range in tiles of TILE positions: each invocation scores whole keys, the tile maximum
// (one reduction) moves the running maximum, probabilities go to shared memory, and after one
// barrier the invocations accumulate the value words they own (spare invocations form groups
// that take every n-th position, summed at the end). The tiles alternate between two buffers,
// so one barrier per tile suffices. Shared memory stays a few KiB whatever the context length.
//
// Body of the attn (subgroup operations) and attn_shmem (tiles only) variants. Spec
// constants: 0 = workgroup size (a power of two), 1 = reduction mode, 2 = TILE (a multiple of
// the workgroup size), 3 = HEADS, 4 = KW, 5 = VW (key / value words per invocation). Head
// sizes up to ATTN_MAX_HD (checked by vk_op_attn).
#extension GL_EXT_control_flow_attributes : require
#ifndef RED_NO_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#define PUSH_ATTN
#include "ops.glsl"

layout(local_size_x_id = 0) in;
#ifndef RED_NO_SUBGROUP
layout(constant_id = 1) const uint RED_MODE = 0u;
#endif
layout(constant_id = 2) const uint TILE = 64u;
layout(constant_id = 3) const uint HEADS = 1u;
layout(constant_id = 4) const uint KW = 1u;
layout(constant_id = 5) const uint VW = 1u;
#include "reduce.glsl"

#define ATTN_MAX_HD 256u
// tiles: value words (two dims each) an invocation accumulates when a row is wider than the
// workgroup
const uint ACC_WORDS = (ATTN_MAX_HD / 2u + WG - 1u) / WG;

layout(std430, set = 0, binding = 0) readonly buffer Q { float q[]; };
layout(std430, set = 0, binding = 1) readonly buffer K { uint k_w[]; };
layout(std430, set = 0, binding = 1) readonly buffer K4 { uvec4 k_w4[]; };
layout(std430, set = 0, binding = 2) readonly buffer V { uint v_w[]; };
layout(std430, set = 0, binding = 3) writeonly buffer O { float o[]; };
layout(std430, set = 0, binding = 4) readonly buffer Step { uint step[]; };

shared float q_sh[ATTN_MAX_HD];
shared float p_sh[2u * TILE];

const float NEG_INF = -1.0 / 0.0;

// q . k for the key row starting at half kh.
float score(uint kh, bool aligned)
{
    float s = 0.0;
    if (aligned) {
        uint k4 = kh / 8u;
        for (uint c = 0u; c < pc.head_dim / 8u; c++) {
            uvec4 u = k_w4[k4 + c];
            uint d = 8u * c;
            s += dot(vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y)),
                     vec4(q_sh[d], q_sh[d + 1u], q_sh[d + 2u], q_sh[d + 3u]));
            s += dot(vec4(unpackHalf2x16(u.z), unpackHalf2x16(u.w)),
                     vec4(q_sh[d + 4u], q_sh[d + 5u], q_sh[d + 6u], q_sh[d + 7u]));
        }
    } else {
        uint kw = kh / 2u;
        for (uint c = 0u; c < pc.head_dim / 2u; c++) {
            vec2 k2 = unpackHalf2x16(k_w[kw + c]);
            s += k2.x * q_sh[2u * c] + k2.y * q_sh[2u * c + 1u];
        }
    }
    return s;
}

// Cache rows available from a layer offset on (a bad position in step must not read past the
// end of the buffer).
uint rows_after(uint len_w, uint off, uint width)
{
    return 2u * len_w > off ? (2u * len_w - off) / width : 0u;
}

void attn_tiles(uint t, uint n_kv)
{
    uint h = gl_WorkGroupID.x, lid = gl_LocalInvocationID.x;
    uint hd = pc.head_dim, hvw = pc.head_dim_v / 2u;
    uint kvh = h / (pc.n_head / pc.n_head_kv);
    uint kw = pc.n_head_kv * hd, vrow_w = pc.n_head_kv * hvw; // row widths: halves, words
    uint kh0 = pc.k_off + kvh * hd;
    uint vw0 = (pc.v_off + kvh * pc.head_dim_v) / 2u;
    bool aligned = ((pc.k_off | hd) & 7u) == 0u;

    uint qb = pc.q_off + t * pc.q_stride + h * hd;
    for (uint i = lid; i < hd; i += WG)
        q_sh[i] = q[qb + i];
    wg_sync();

    // value words of this invocation: w0, w0 + WG, ... (groups == 1), or word w0 of the
    // positions g, g + groups, ... of each tile
    uint groups = hvw >= WG ? 1u : WG / hvw;
    uint g = groups == 1u ? 0u : lid / hvw;
    uint w0 = groups == 1u ? lid : lid % hvw;
    bool v_active = g < groups;
    vec2 acc[ACC_WORDS];
    for (uint a = 0u; a < ACC_WORDS; a++)
        acc[a] = vec2(0.0);

    float m = NEG_INF, l = 0.0;
    uint buf = 0u;
    for (uint base = 0u; base < n_kv; base += TILE) {
        uint cnt = min(TILE, n_kv - base);
        float tmax = NEG_INF;
        for (uint j = lid; j < cnt; j += WG) {
            float s = pc.scale * score(kh0 + (base + j) * kw, aligned);
            p_sh[buf + j] = s;
            tmax = max(tmax, s);
        }
        float m_new = max(m, wg_max(tmax));
        float alpha = m == NEG_INF ? 0.0 : exp(m - m_new);
        float lsum = 0.0;
        for (uint j = lid; j < cnt; j += WG) { // the invocation's own slots: no barrier needed
            float p = exp(p_sh[buf + j] - m_new);
            p_sh[buf + j] = p;
            lsum += p;
        }
        l = l * alpha + lsum;
        m = m_new;
        for (uint a = 0u; a < ACC_WORDS; a++)
            acc[a] *= alpha;
        wg_sync();
        if (v_active)
            for (uint j = g; j < cnt; j += groups) {
                float p = p_sh[buf + j];
                uint vr = vw0 + (base + j) * vrow_w;
                for (uint a = 0u; a < ACC_WORDS; a++) {
                    uint w = w0 + a * WG;
                    if (w < hvw)
                        acc[a] += p * unpackHalf2x16(v_w[vr + w]);
                }
            }
        buf ^= TILE;
    }

    float inv_l = 1.0 / wg_sum(l);
    uint ob = pc.o_off + t * pc.o_stride + h * pc.head_dim_v;
    if (groups == 1u) {
        for (uint a = 0u; a < ACC_WORDS; a++) {
            uint w = w0 + a * WG;
            if (w < hvw) {
                o[ob + 2u * w] = acc[a].x * inv_l;
                o[ob + 2u * w + 1u] = acc[a].y * inv_l;
            }
        }
        return;
    }
    // several groups: sum their partial rows through shared memory (2 * WG <= 2 * TILE floats)
    wg_sync();
    if (v_active) {
        p_sh[2u * lid] = acc[0].x;
        p_sh[2u * lid + 1u] = acc[0].y;
    }
    wg_sync();
    if (g == 0u) {
        vec2 s = acc[0];
        for (uint gg = 1u; gg < groups; gg++)
            s += vec2(p_sh[2u * (gg * hvw + w0)], p_sh[2u * (gg * hvw + w0) + 1u]);
        o[ob + 2u * w0] = s.x * inv_l;
        o[ob + 2u * w0 + 1u] = s.y * inv_l;
    }
}

#ifndef RED_NO_SUBGROUP
shared float st_acc[ATTN_MAX_HD]; // merging subgroups: one head's output row
shared float st_ml[WG];           // and one value per subgroup

// Several subgroups' (m, l, acc) of one head into the output row at ob (RED_SUBGROUP only).
void merge_streams(float m, float l, vec2 acc[VW], uint ob)
{
    uint sg = gl_SubgroupID, nsg = gl_NumSubgroups, lane = gl_SubgroupInvocationID;
    uint sgs = gl_SubgroupSize, hvw = pc.head_dim_v / 2u;
    barrier(); // the previous head's readers are done with st_ml and st_acc
    if (subgroupElect())
        st_ml[sg] = m;
    barrier();
    float big = st_ml[0];
    for (uint s = 1u; s < nsg; s++)
        big = max(big, st_ml[s]);
    float f = m == NEG_INF ? 0.0 : exp(m - big); // a subgroup without positions adds nothing
    barrier();
    if (subgroupElect())
        st_ml[sg] = l * f;
    barrier();
    float sum = 0.0;
    for (uint s = 0u; s < nsg; s++)
        sum += st_ml[s];
    for (uint s = 0u; s < nsg; s++) { // one subgroup after another: no float atomics needed
        if (sg == s)
            [[unroll]] for (uint a = 0u; a < VW; a++) {
                uint w = lane + a * sgs;
                if (w < hvw) {
                    vec2 v = acc[a] * f;
                    if (s > 0u)
                        v += vec2(st_acc[2u * w], st_acc[2u * w + 1u]);
                    st_acc[2u * w] = v.x;
                    st_acc[2u * w + 1u] = v.y;
                }
            }
        barrier();
    }
    for (uint i = gl_LocalInvocationID.x; i < pc.head_dim_v; i += WG)
        o[ob + i] = st_acc[i] / sum;
}

void attn_streams(uint t, uint n_kv)
{
    uint group = pc.n_head / pc.n_head_kv, chunks = (group + HEADS - 1u) / HEADS;
    uint x = gl_WorkGroupID.x;
    if (x >= pc.n_head_kv * chunks) // the whole workgroup leaves: no barrier is skipped by half
        return;
    uint kvh = x / chunks, hc = (x % chunks) * HEADS, h0 = kvh * group + hc;
    uint nh = min(HEADS, group - hc);
    uint lane = gl_SubgroupInvocationID, sgs = gl_SubgroupSize;
    uint sg = RED_MODE == RED_ONE_SG ? 0u : gl_SubgroupID;
    uint nsg = RED_MODE == RED_ONE_SG ? 1u : gl_NumSubgroups;
    uint hw = pc.head_dim / 2u, hvw = pc.head_dim_v / 2u;

    vec2 qr[HEADS][KW], acc[HEADS][VW];
    float m[HEADS], l[HEADS];
    // Slots past the head (or heads past the group) read a clamped address and drop the
    // value: a select may load both sides, and the last row of a buffer has nothing after it.
    [[unroll]] for (uint g = 0u; g < HEADS; g++) {
        uint qb = pc.q_off + t * pc.q_stride + (h0 + min(g, nh - 1u)) * pc.head_dim;
        [[unroll]] for (uint a = 0u; a < KW; a++) {
            uint w = lane + a * sgs, wc = 2u * min(w, hw - 1u);
            qr[g][a] = g < nh && w < hw ? vec2(q[qb + wc], q[qb + wc + 1u]) : vec2(0.0);
        }
        [[unroll]] for (uint a = 0u; a < VW; a++)
            acc[g][a] = vec2(0.0);
        m[g] = NEG_INF;
        l[g] = 0.0;
    }
    uint k_row = pc.n_head_kv * hw, v_row = pc.n_head_kv * hvw; // words
    uint k0 = (pc.k_off + kvh * pc.head_dim) / 2u, v0 = (pc.v_off + kvh * pc.head_dim_v) / 2u;
    for (uint j = sg; j < n_kv; j += nsg) {
        vec2 kv[KW], vv[VW];
        [[unroll]] for (uint a = 0u; a < KW; a++) {
            uint w = lane + a * sgs;
            kv[a] = w < hw ? unpackHalf2x16(k_w[k0 + j * k_row + min(w, hw - 1u)]) : vec2(0.0);
        }
        [[unroll]] for (uint a = 0u; a < VW; a++) {
            uint w = lane + a * sgs;
            vv[a] = w < hvw ? unpackHalf2x16(v_w[v0 + j * v_row + min(w, hvw - 1u)]) : vec2(0.0);
        }
        [[unroll]] for (uint g = 0u; g < HEADS; g++) {
            if (g < nh) {
                float part = 0.0;
                [[unroll]] for (uint a = 0u; a < KW; a++)
                    part += dot(kv[a], qr[g][a]);
                float s = subgroupAdd(part) * pc.scale;
                // one exp: either the new score or the running maximum is the new maximum,
                // so one of exp(s - max) and exp(m - max) is 1 (m = -inf at first: alpha 0)
                float d = s - m[g], e = exp(-abs(d));
                float alpha = d > 0.0 ? e : 1.0, p = d > 0.0 ? 1.0 : e;
                l[g] = l[g] * alpha + p;
                [[unroll]] for (uint a = 0u; a < VW; a++)
                    acc[g][a] = acc[g][a] * alpha + p * vv[a];
                m[g] = max(m[g], s);
            }
        }
    }
    [[unroll]] for (uint g = 0u; g < HEADS; g++) {
        if (g < nh) {
            uint ob = pc.o_off + t * pc.o_stride + (h0 + g) * pc.head_dim_v;
            if (RED_MODE == RED_SUBGROUP) {
                merge_streams(m[g], l[g], acc[g], ob);
                continue;
            }
            float inv_l = 1.0 / l[g];
            [[unroll]] for (uint a = 0u; a < VW; a++) {
                uint w = lane + a * sgs;
                if (w < hvw) {
                    o[ob + 2u * w] = acc[g][a].x * inv_l;
                    o[ob + 2u * w + 1u] = acc[g][a].y * inv_l;
                }
            }
        }
    }
}
#endif

void main()
{
    uint t = gl_WorkGroupID.y;
    if (t >= step[1])
        return;
    uint kw = pc.n_head_kv * pc.head_dim, vw = pc.n_head_kv * pc.head_dim_v; // halves
    uint n_kv = min(step[0] + t + 1u, min(rows_after(k_w.length(), pc.k_off, kw),
                                          rows_after(v_w.length(), pc.v_off, vw)));
#ifndef RED_NO_SUBGROUP
    if (RED_MODE != RED_SHARED && pc.head_dim / 2u <= KW * gl_SubgroupSize &&
        pc.head_dim_v / 2u <= VW * gl_SubgroupSize) {
        attn_streams(t, n_kv);
        return;
    }
#endif
    attn_tiles(t, n_kv);
}
