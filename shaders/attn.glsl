// Causal attention over the f16 KV cache (engine/vk_ops.h): one workgroup per (head, token),
// grid (n_head, tokens); token t of the batch attends to cache rows 0 .. step[0] + t.
//
// The KV range is walked in tiles of TILE positions with an online softmax, so any context
// length runs in fixed shared memory (q, two tiles of probabilities, the reduction scratch:
// a few KiB). Per tile:
//   1. scores: invocation i takes positions i, i + WG, ... of the tile and computes the full
//      dot product q.k for each (K rows read as uvec4 when 8-half aligned);
//   2. the tile maximum (one workgroup reduction) moves the running maximum; the invocations
//      turn their scores into exp(s - max) in place and keep their own running sums, all
//      rescaled by the same factor, so the sum needs no reduction until the end;
//   3. after one barrier, every invocation accumulates p * v over the tile for the value words
//      it owns: a value row is split across the invocations (hd_v / 2 words); when it has fewer
//      words than the workgroup has invocations, the spare ones form more groups, each taking
//      every groups-th position, and the groups are summed at the end.
// The probability tiles alternate between two buffers, so the next tile's scores never
// overwrite ones still being read, and one barrier per tile suffices (with RED_ONE_SG, the
// lavapipe setting, that is the only synchronisation, and only within a subgroup).
// Decoding one token over a long context thus uses the whole workgroup on one head.
//
// Body shared by attn.comp (subgroup reductions) and attn_shmem.comp. Spec constants:
// 0 = workgroup size (a power of two), 1 = reduction mode (shaders/reduce.glsl), 2 = TILE
// (a multiple of the workgroup size). Head sizes up to ATTN_MAX_HD (checked by vk_op_attn).
#define PUSH_ATTN
#include "ops.glsl"

layout(local_size_x_id = 0) in;
#ifndef RED_NO_SUBGROUP
layout(constant_id = 1) const uint RED_MODE = 0u;
#endif
layout(constant_id = 2) const uint TILE = 64u;
#include "reduce.glsl"

#define ATTN_MAX_HD 256u
// value words (two dims each) an invocation accumulates when a row is wider than the workgroup
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

void main()
{
    uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, lid = gl_LocalInvocationID.x;
    if (t >= step[1])
        return;
    uint hd = pc.head_dim, hvw = pc.head_dim_v / 2u;
    uint kvh = h / (pc.n_head / pc.n_head_kv);
    uint kw = pc.n_head_kv * hd, vrow_w = pc.n_head_kv * hvw; // row widths: halves, words
    uint n_kv = min(step[0] + t + 1u, min(rows_after(k_w.length(), pc.k_off, kw),
                                          rows_after(v_w.length(), pc.v_off, 2u * vrow_w)));
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
