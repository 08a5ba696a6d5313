/* Matrix-product kernels, one per weight type (the mul_mat_<type> variants listed in
 * shaders/variants.txt, all built from shaders/mul_mat.glsl and shaders/dequant.glsl), and the
 * recording function that checks a product's arguments and picks its grid.
 *
 * One shader serves every device; the work split comes from specialization constants chosen
 * here from what the probe found (docs/DESIGN.md section 5.4):
 *   - CPU devices (lavapipe): one invocation per row, a workgroup of one subgroup, 8 rows per
 *     invocation when decoding, 4 rows x 8 tokens in batches, X shared through
 *     subgroupBroadcast. lavapipe (Mesa 22.3) turns each storage-buffer load into a scalar
 *     loop over the 8 lanes, about 25 cycles per lane and word, uniform address or not:
 *     streaming a buffer that way peaks near 0.7 GB/s on the 2-core AVX2 test machine, so
 *     every choice here minimises loads. Measured there, Q8_0 4096 x 4096, one token:
 *     invocation per row 0.37 GB/s with 1 row per invocation, 0.47 with 2, 0.52 with 4, 0.56
 *     with 8 (8 also wins on 192- to 1536-row matrices); X loaded by every lane instead of
 *     broadcast 0.15; a subgroup per row with subgroupAdd 0.11 (0.26 with 4 rows). Batches
 *     (N = 64): 4 rows x 8 tokens 2.5-3.0 GFLOP/s; 8 x 8 3.6-3.9 but 9-13 s of LLVM compile
 *     per type at first use (Mesa caches it on disk); 4 x 4 2.0. Those figures are for W in a
 *     storage buffer. CPU devices now read W through a uniform texel buffer (R32_UINT view,
 *     mul_mat_<type>_tex): lavapipe fetches texels with one AVX2 gather per 8 lanes instead of
 *     a scalar loop, and the same Q8_0 products run 2.6-3.3x faster (4096 x 4096: 1.65 GB/s
 *     against 0.51; 1536 x 576: 1.4 against 0.19). What remains is the gather itself (a
 *     quarter of the kernel's time sits on the instruction after it) and the fetch's bounds
 *     check; all rows of a dispatch reading the same cached words ran no faster, so the
 *     access pattern is not what limits it.
 *   - GPUs: a subgroup per row group (2 rows), lanes on adjacent 32-column groups, subgroupAdd;
 *     shared-memory reduction where the device lacks subgroup arithmetic. Untested for speed
 *     (no GPU where this was written); tests run these splits on lavapipe for correctness.
 * vk_ops has one kernel slot per type and no room for a configuration, so the configuration is
 * a pure function of the device (choose_config), evaluated at creation and at every recording.
 * The shader needs subgroup basic, ballot and arithmetic support in its SPIR-V even where a
 * path goes unused, so a device without them cannot create these kernels.
 */
#include <stdio.h>
#include <string.h>

#include "engine/vk_internal.h"
#include "engine/vk_ops.h"

/* Specialization constants, ids 0..7 in shaders/mul_mat.glsl order. */
typedef struct mm_config {
    uint32_t wg;  /* invocations per workgroup */
    uint32_t lpr; /* lanes per row group */
    uint32_t rpg; /* rows per row group */
    uint32_t nt;  /* tokens per invocation when N > 1 */
    uint32_t sgs; /* subgroup size assumed by the X broadcast */
    uint32_t xbc; /* 1: lanes share X through subgroupBroadcast (lpr = 1 only) */
    uint32_t red; /* 0: no reduction, 1: subgroupAdd, 2: shared memory */
    uint32_t rpd; /* rows per row group when N = 1 */
} mm_config;
#define MM_N_SPEC 8u
_Static_assert(sizeof(mm_config) == MM_N_SPEC * sizeof(uint32_t), "spec constants are uints");

static const struct {
    uint32_t type;
    const char *shader;
} mm_shaders[] = {
    { GGUF_T_F32, "mul_mat_f32" },   { GGUF_T_F16, "mul_mat_f16" },
    { GGUF_T_Q4_0, "mul_mat_q4_0" }, { GGUF_T_Q4_1, "mul_mat_q4_1" },
    { GGUF_T_Q5_0, "mul_mat_q5_0" }, { GGUF_T_Q5_1, "mul_mat_q5_1" },
    { GGUF_T_Q8_0, "mul_mat_q8_0" }, { GGUF_T_Q2_K, "mul_mat_q2_k" },
    { GGUF_T_Q3_K, "mul_mat_q3_k" }, { GGUF_T_Q4_K, "mul_mat_q4_k" },
    { GGUF_T_Q5_K, "mul_mat_q5_k" }, { GGUF_T_Q6_K, "mul_mat_q6_k" },
};

static int is_pow2(uint32_t v) { return v && !(v & (v - 1)); }

static const vk_device_info *chosen_device(const vk_ctx *ctx)
{
    return vk_ctx_device_info(ctx, vk_ctx_choice(ctx)->index);
}

/* The work split for a device (the file comment says why). Same answer for the same device
 * every time. */
static mm_config choose_config(const vk_device_info *d)
{
    uint32_t sg = d->subgroup_size ? d->subgroup_size : 32;
    int sg_ok = d->subgroup_in_compute && is_pow2(sg);
    int arith = sg_ok && (d->subgroup_ops & VK_SGOP_ARITHMETIC);
    int ballot = sg_ok && (d->subgroup_ops & VK_SGOP_BALLOT);
    uint32_t max_wg = d->max_compute_workgroup_invocations;
    if (d->max_compute_workgroup_size[0] < max_wg)
        max_wg = d->max_compute_workgroup_size[0];
    if (max_wg < 8)
        max_wg = 128; /* not reported: Vulkan's minimum */
    if (d->type == VK_DEVTYPE_CPU) {
        mm_config c = { .wg = sg <= max_wg ? sg : max_wg, .lpr = 1, .rpg = 4, .nt = 8,
                        .sgs = sg, .xbc = ballot && sg <= 32 && sg <= max_wg, .red = 0,
                        .rpd = 8 };
        if (!c.xbc)
            c.sgs = 8; /* unused, but XPL = 32 / sgs must stay a whole number */
        return c;
    }
    mm_config c = { .lpr = arith && sg <= 128 ? sg : 32, .rpg = 2, .nt = 4, .sgs = sg,
                    .xbc = 0, .red = arith && sg <= 128 ? 1 : 2, .rpd = 2 };
    while (c.lpr > max_wg)
        c.lpr /= 2;
    /* shared memory holds one float per invocation, row and token (the reduction) */
    c.wg = c.lpr >= 128 ? c.lpr : 128;
    while (c.wg > c.lpr &&
           (c.wg > max_wg || (uint64_t)c.wg * c.rpg * c.nt * 4 > d->max_compute_shared_memory))
        c.wg /= 2;
    if (c.sgs > 32 || 32 % c.sgs)
        c.sgs = 8; /* only the CPU broadcast path reads it */
    return c;
}

/* Quant bytes per block of the types whose rows are packed for their RGBA32 kernel, else 0. */
static uint32_t packed_qbytes(uint32_t type)
{
    return type == GGUF_T_Q8_0 ? 32 : type == GGUF_T_Q4_0 || type == GGUF_T_Q5_0 ? 16 : 0;
}

/* High-bit bytes per block of a packed type (Q5_0's qh), after the f16 scale. */
static uint32_t packed_hbytes(uint32_t type) { return type == GGUF_T_Q5_0 ? 4 : 0; }

/* Types with an RGBA32 texel kernel: Q4_0, Q5_0 and Q8_0 on packed rows; Q4_K and Q5_K on their own
 * rows, whose super-blocks (144 and 176 bytes) are whole 16-byte texels already. */
static bool has_t4(uint32_t type)
{
    return packed_qbytes(type) || type == GGUF_T_Q4_K || type == GGUF_T_Q5_K;
}

typedef enum mm_variant { MM_STORAGE, MM_TEX, MM_T4 } mm_variant;

/* The one kernel a type uses on a device (create_type's production choice): a pure function of
 * the device, so the row layout is known before any kernel exists. */
static mm_variant variant_for(const vk_device_info *d, uint32_t t)
{
    uint64_t range = d->max_storage_buffer_range, el = d->max_texel_buffer_elements;
    bool cpu = d->type == VK_DEVTYPE_CPU;
    if (cpu && has_t4(t) && el * 16 >= range)
        return MM_T4;
    return cpu && el * 4 >= range ? MM_TEX : MM_STORAGE;
}

/* Rows are packed where the type's kernel is the RGBA32 one: decided by the device for a kernel
 * set made by vk_ops_new, by the slots a test filled for a hand-built one. */
static bool packed_rows(const vk_ops *ops, uint32_t type)
{
    if (type >= GGUF_T_COUNT || !packed_qbytes(type))
        return false;
    return ops->lazy ? variant_for(chosen_device(ops->ctx), type) == MM_T4
                     : ops->mul_mat_t4[type] != NULL;
}

static int shader_index(uint32_t type)
{
    for (size_t i = 0; i < sizeof mm_shaders / sizeof mm_shaders[0]; i++)
        if (mm_shaders[i].type == type)
            return (int)i;
    return -1;
}

static void spec_for(const vk_device_info *d, uint32_t spec[MM_N_SPEC])
{
    mm_config c = choose_config(d);
    const uint32_t s[MM_N_SPEC] = { c.wg, c.lpr, c.rpg, c.nt, c.sgs, c.xbc, c.red, c.rpd };
    memcpy(spec, s, sizeof s);
}

/* vk_kernel_maker for vk_ops_lazy: the variant_for kernel of mm_shaders[*arg]. */
static vk_status make_mm(vk_ops *ops, const void *arg, vk_kernel **out)
{
    size_t i = *(const size_t *)arg;
    uint32_t spec[MM_N_SPEC];
    const vk_device_info *d = chosen_device(ops->ctx);
    spec_for(d, spec);
    char name[64];
    switch (variant_for(d, mm_shaders[i].type)) {
    case MM_T4:
        snprintf(name, sizeof name, "%s_t4", mm_shaders[i].shader);
        return vk_kernel_create_texel(ops->ctx, name, 4, VK_TEXEL_RGBA32(0),
                                      sizeof(vk_push_mul_mat), spec, MM_N_SPEC, out);
    case MM_TEX:
        snprintf(name, sizeof name, "%s_tex", mm_shaders[i].shader);
        return vk_kernel_create_texel(ops->ctx, name, 4, VK_TEXEL_R32(0),
                                      sizeof(vk_push_mul_mat), spec, MM_N_SPEC, out);
    default:
        return vk_kernel_create(ops->ctx, mm_shaders[i].shader, 4, sizeof(vk_push_mul_mat),
                                spec, MM_N_SPEC, out);
    }
}

vk_status vk_mm_kernel(vk_ops *ops, uint32_t type, const vk_buffer *w, vk_kernel **out)
{
    *out = NULL;
    int i = type < GGUF_T_COUNT ? shader_index(type) : -1;
    if (i < 0)
        return vk_set_error(ops->ctx, VK_STATUS_UNSUPPORTED, "no matrix kernel for type %u (%s)",
                            type, gguf_type_get(type) ? gguf_type_get(type)->name : "unknown");
    if (ops->lazy) {
        static const size_t idx[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 };
        _Static_assert(sizeof idx / sizeof idx[0] == sizeof mm_shaders / sizeof mm_shaders[0],
                       "one index per shader");
        mm_variant v = variant_for(chosen_device(ops->ctx), type);
        vk_kernel **slot = v == MM_T4 ? &ops->mul_mat_t4[type]
                           : v == MM_TEX ? &ops->mul_mat_tex[type] : &ops->mul_mat[type];
        return vk_ops_lazy(ops, slot, make_mm, &idx[i], out);
    }
    /* a hand-built set: packed rows need their kernel; the others take the texel kernel where
     * W has a view */
    *out = ops->mul_mat_t4[type] ? ops->mul_mat_t4[type]
           : ops->mul_mat_tex[type] && (!w || vk_buffer_has_texel_view(w, 0))
               ? ops->mul_mat_tex[type]
               : ops->mul_mat[type];
    if (!*out)
        return vk_set_error(ops->ctx, VK_STATUS_BAD_ARG, "mul_mat %s: no kernel for a W of "
                            "%llu bytes in this kernel set", gguf_type_get(type)->name,
                            w ? (unsigned long long)vk_buffer_size(w) : 0ull);
    return VK_STATUS_OK;
}

/* Which kernels a type gets. CPU devices read W through texel buffers (RGBA32 where the type
 * has such a kernel, else R32) when every buffer they may bind fits a texel view; everything else
 * uses storage buffers. Production creates only that kernel per type: each pipeline costs
 * lavapipe a second or more of NIR work at creation, and the unused ones doubled start-up.
 * all_variants (the matrix tests) creates every kernel the device can run, so they can compare
 * the variants. */
static vk_status create_type(vk_ops *ops, size_t i, const uint32_t *spec, bool all_variants)
{
    vk_ctx *ctx = ops->ctx;
    const vk_device_info *d = chosen_device(ctx);
    uint32_t t = mm_shaders[i].type;
    uint64_t range = d->max_storage_buffer_range, el = d->max_texel_buffer_elements;
    bool cpu = d->type == VK_DEVTYPE_CPU;
    bool t4 = cpu && has_t4(t) && el * 16 >= range, tex = cpu && el * 4 >= range;
    char name[64];
    vk_status st = VK_STATUS_OK;
    if (all_variants || (!t4 && !tex))
        st = vk_kernel_create(ctx, mm_shaders[i].shader, 4, sizeof(vk_push_mul_mat), spec,
                              MM_N_SPEC, &ops->mul_mat[t]);
    snprintf(name, sizeof name, "%s_tex", mm_shaders[i].shader);
    if (!st && tex && (all_variants || !t4))
        st = vk_kernel_create_texel(ctx, name, 4, VK_TEXEL_R32(0), sizeof(vk_push_mul_mat),
                                    spec, MM_N_SPEC, &ops->mul_mat_tex[t]);
    snprintf(name, sizeof name, "%s_t4", mm_shaders[i].shader);
    if (!st && t4)
        st = vk_kernel_create_texel(ctx, name, 4, VK_TEXEL_RGBA32(0), sizeof(vk_push_mul_mat),
                                    spec, MM_N_SPEC, &ops->mul_mat_t4[t]);
    return st;
}

/* Fills the matrix kernel slots (entries must be NULL); see create_type. On failure none is
 * left set. */
vk_status vk_ops_create_matmul(vk_ops *ops, bool all_variants)
{
    uint32_t spec[MM_N_SPEC];
    spec_for(chosen_device(ops->ctx), spec);
    for (size_t i = 0; i < sizeof mm_shaders / sizeof mm_shaders[0]; i++) {
        vk_status st = create_type(ops, i, spec, all_variants);
        if (st) {
            vk_ops_free_matmul(ops);
            return st;
        }
    }
    return VK_STATUS_OK;
}

void vk_ops_free_matmul(vk_ops *ops)
{
    for (int i = 0; i < GGUF_T_COUNT; i++) {
        vk_kernel_free(ops->mul_mat[i]);
        vk_kernel_free(ops->mul_mat_tex[i]);
        vk_kernel_free(ops->mul_mat_t4[i]);
        ops->mul_mat[i] = ops->mul_mat_tex[i] = ops->mul_mat_t4[i] = NULL;
    }
}

static uint64_t pad16(uint64_t n) { return (n + 15) / 16 * 16; }

/* Offsets in a packed row (shaders/dequant.glsl PACKED_ROW_BYTES): the scales' run, then the
 * high bits' run, each padded to 16 bytes, then the quants. */
static uint64_t high_at(uint32_t K) { return pad16((uint64_t)K / 16); }
static uint64_t quants_at(uint32_t type, uint32_t K)
{
    return high_at(K) + pad16((uint64_t)K / 32 * packed_hbytes(type));
}

uint64_t vk_mm_row_bytes(const vk_ops *ops, uint32_t type, uint32_t K)
{
    if (packed_rows(ops, type))
        return quants_at(type, K) + (uint64_t)K / 32 * packed_qbytes(type);
    const gguf_type_info *ti = gguf_type_get(type);
    return ti ? (uint64_t)K / ti->block_elems * ti->block_bytes : 0;
}

void vk_mm_pack_rows(const vk_ops *ops, uint32_t type, uint32_t K, uint32_t rows,
                     const void *src, void *dst)
{
    uint64_t out_row = vk_mm_row_bytes(ops, type, K);
    if (!packed_rows(ops, type)) {
        memcpy(dst, src, (size_t)(rows * out_row));
        return;
    }
    uint32_t qb = packed_qbytes(type), hb = packed_hbytes(type), nb = K / 32;
    const uint8_t *s = src;
    for (uint32_t r = 0; r < rows; r++) {
        uint8_t *o = (uint8_t *)dst + (size_t)r * out_row;
        uint8_t *h = o + high_at(K), *q = o + quants_at(type, K);
        memset(o, 0, (size_t)quants_at(type, K)); /* the runs' padding */
        for (uint32_t b = 0; b < nb; b++, s += 2 + hb + qb) {
            memcpy(o + 2 * b, s, 2);
            memcpy(h + (size_t)b * hb, s + 2, hb);
            memcpy(q + (size_t)b * qb, s + 2 + hb, qb);
        }
    }
}

bool vk_ops_has_type(const vk_ops *ops, uint32_t type)
{
    if (type >= GGUF_T_COUNT)
        return false;
    if (ops->lazy)
        return shader_index(type) >= 0;
    return ops->mul_mat[type] || ops->mul_mat_tex[type] || ops->mul_mat_t4[type];
}

#define MM_MAX_K (65535u * 32u)

/* bytes = (first + count) * unit fits in a buffer of `size` bytes. */
static int fits(uint64_t first, uint64_t count, uint64_t unit, uint64_t size)
{
    return (first + count) * unit <= size;
}

static vk_status check_mul_mat(vk_ops *ops, uint32_t type, vk_buffer *w, vk_buffer *x,
                               vk_buffer *y, vk_buffer *bias, const vk_push_mul_mat *p)
{
    vk_ctx *ctx = ops->ctx;
    const gguf_type_info *ti = gguf_type_get(type);
    if (!vk_ops_has_type(ops, type) || !ti)
        return vk_set_error(ctx, VK_STATUS_UNSUPPORTED, "no matrix kernel for type %u (%s)",
                            type, ti ? ti->name : "unknown");
    if (!w || !x || !y || !p)
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "mul_mat %s: W, X, Y and the push "
                            "constants are required", ti->name);
    if (!p->K || !p->M || !p->N)
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "mul_mat %s: empty product K=%u M=%u N=%u",
                            ti->name, p->K, p->M, p->N);
    if (p->K % ti->block_elems)
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "mul_mat %s: K=%u is not a multiple of the "
                            "block size %u", ti->name, p->K, ti->block_elems);
    /* lavapipe (gallivm) silently ends any loop after 65535 iterations; the shader's longest
     * loop runs over a row's 32-column groups */
    if (p->K > MM_MAX_K)
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "mul_mat %s: K=%u exceeds %u (65535 groups "
                            "of 32 columns, the longest loop a CPU driver runs)", ti->name, p->K,
                            MM_MAX_K);
    if (p->flags & ~(uint32_t)(VK_MM_BIAS | VK_MM_ACCUMULATE))
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "mul_mat %s: unknown flags 0x%x", ti->name,
                            p->flags);
    if ((p->flags & VK_MM_BIAS) && !bias)
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "mul_mat %s: VK_MM_BIAS without a bias "
                            "buffer", ti->name);
    /* The shader reads W as whole words: the last used byte's word must be in the buffer. */
    uint64_t row_bytes = vk_mm_row_bytes(ops, type, p->K);
    uint64_t w_end = ((p->w_row0 + (uint64_t)p->M) * row_bytes + 3) / 4 * 4;
    if (w_end > vk_buffer_size(w))
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "mul_mat %s: W rows %u..%llu of %llu bytes "
                            "(K=%u) need %llu bytes (rounded up to whole 4-byte words), the "
                            "buffer has %llu", ti->name, p->w_row0,
                            (unsigned long long)p->w_row0 + p->M - 1,
                            (unsigned long long)row_bytes, p->K, (unsigned long long)w_end,
                            (unsigned long long)vk_buffer_size(w));
    uint64_t x_end = p->x_off + (uint64_t)(p->N - 1) * p->x_stride;
    if (!fits(x_end, p->K, 4, vk_buffer_size(x)))
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "mul_mat %s: X needs floats up to %llu "
                            "(x_off=%u x_stride=%u N=%u K=%u), the buffer has %llu bytes",
                            ti->name, (unsigned long long)(x_end + p->K), p->x_off,
                            p->x_stride, p->N, p->K, (unsigned long long)vk_buffer_size(x));
    uint64_t y_end = p->y_off + (uint64_t)(p->N - 1) * p->y_stride + p->y_row0;
    if (!fits(y_end, p->M, 4, vk_buffer_size(y)))
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "mul_mat %s: Y needs floats up to %llu "
                            "(y_off=%u y_stride=%u y_row0=%u N=%u M=%u), the buffer has %llu "
                            "bytes", ti->name, (unsigned long long)(y_end + p->M), p->y_off,
                            p->y_stride, p->y_row0, p->N, p->M,
                            (unsigned long long)vk_buffer_size(y));
    if ((p->flags & VK_MM_BIAS) && !fits(p->b_off, p->M, 4, vk_buffer_size(bias)))
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "mul_mat %s: bias needs floats up to %llu "
                            "(b_off=%u M=%u), the buffer has %llu bytes", ti->name,
                            (unsigned long long)p->b_off + p->M, p->b_off, p->M,
                            (unsigned long long)vk_buffer_size(bias));
    return VK_STATUS_OK;
}

vk_status vk_op_mul_mat(vk_ops *ops, vk_seq *s, uint32_t type, vk_buffer *w, vk_buffer *x,
                        vk_buffer *y, vk_buffer *bias, const vk_push_mul_mat *p)
{
    vk_ctx *ctx = ops->ctx;
    vk_status st = check_mul_mat(ops, type, w, x, y, bias, p);
    if (st)
        return st;
    const vk_device_info *d = chosen_device(ctx);
    mm_config c = choose_config(d);
    uint32_t rows_per_wg = c.wg / c.lpr * (p->N == 1 ? c.rpd : c.rpg);
    uint32_t tiles = (p->M + rows_per_wg - 1) / rows_per_wg;
    /* Row tiles past the x limit wrap into z; the shader skips the rectangle's spare tiles. */
    uint32_t gx = tiles < d->max_compute_workgroup_count[0] ? tiles
                                                            : d->max_compute_workgroup_count[0];
    uint32_t gz = (tiles + gx - 1) / gx;
    uint32_t gy = p->N == 1 ? 1 : (p->N + c.nt - 1) / c.nt;
    if (gy > d->max_compute_workgroup_count[1] || gz > d->max_compute_workgroup_count[2])
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "mul_mat: grid %u x %u x %u for M=%u N=%u "
                            "exceeds the device's %u x %u x %u workgroups", gx, gy, gz, p->M,
                            p->N, d->max_compute_workgroup_count[0],
                            d->max_compute_workgroup_count[1],
                            d->max_compute_workgroup_count[2]);
    vk_buffer *bufs[4] = { w, x, y, bias ? bias : x };
    vk_kernel *k;
    if ((st = vk_mm_kernel(ops, type, w, &k)))
        return st;
    return vk_seq_dispatch(s, k, bufs, p, gx, gy, gz);
}
