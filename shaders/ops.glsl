// Push-constant blocks of the forward-pass kernels: the GLSL side of engine/vk_ops.h (the C
// structs pin the sizes with _Static_assert; keep both in the same order). A shader defines
// the one it uses before including this file, e.g. `#define PUSH_MUL_MAT`.

#ifdef PUSH_MUL_MAT
layout(push_constant) uniform PushMulMat {
    uint K, M, N;
    uint w_row0;
    uint x_off, x_stride;
    uint y_off, y_stride, y_row0;
    uint b_off;
    uint flags;
    uint pad;
} pc;
#define MM_BIAS 1u
#define MM_ACCUMULATE 2u
#endif

#ifdef PUSH_RMS_NORM
layout(push_constant) uniform PushRmsNorm {
    uint n, rows;
    uint x_off, x_stride, y_off, y_stride, w_off;
    float eps;
} pc;
#endif

#ifdef PUSH_ROPE
layout(push_constant) uniform PushRope {
    uint n_heads, head_dim, n_rot;
    uint x_off, x_stride;
    uint cache_off;
    uint flags;
    float freq_base, freq_scale;
    uint pad0, pad1, pad2;
} pc;
#define ROPE_NEOX 1u
#define ROPE_FACTORS 2u
#define ROPE_STORE 4u
#endif

#ifdef PUSH_KV_STORE
layout(push_constant) uniform PushKvStore {
    uint n;
    uint x_off, x_stride;
    uint cache_off;
} pc;
#endif

#ifdef PUSH_ATTN
layout(push_constant) uniform PushAttn {
    uint n_head, n_head_kv, head_dim, head_dim_v;
    uint q_off, q_stride, o_off, o_stride;
    uint k_off, v_off;
    float scale;
    uint pad;
} pc;
#endif

#ifdef PUSH_SWIGLU
layout(push_constant) uniform PushSwiglu {
    uint n, rows;
    uint g_off, g_stride, u_off, u_stride, o_off, o_stride;
} pc;
#endif

#ifdef PUSH_ADD
layout(push_constant) uniform PushAdd {
    uint n, rows;
    uint x_off, x_stride, y_off, y_stride;
    uint pad0, pad1;
} pc;
#endif

#ifdef PUSH_ARGMAX
layout(push_constant) uniform PushArgmax {
    uint n, x_off;
    uint pad0, pad1;
} pc;
#endif
