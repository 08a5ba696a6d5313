/* Device self-check: shaders/selfcheck.comp (y = a*x + b) against the same sum in C.
 *
 * It exercises the whole minimal path a model will rely on: device start, buffer create,
 * upload, pipeline with a specialization constant and push constants, dispatch over many
 * workgroups with a ragged tail, and download. The output buffer is poisoned with NaN first
 * so a kernel that writes nothing cannot pass.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/vk_internal.h"
#include "engine/vk_push.h"

/* xorshift64*: fresh, reproducible inputs from a seed without pulling in a RNG module. */
static uint64_t next_u64(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

/* Uniform in [lo, hi). 24 random bits, so every value is exact in float. */
static float next_float(uint64_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)(next_u64(s) >> 40) / 16777216.0f;
}

/* Compares y with a*x+b computed in float with one rounding per operation, as the shader's
 * `precise` demands (-std=c11 keeps GCC from contracting into fma, and the split statement
 * makes the intent plain). */
static void compare(const float *x, const float *y, uint32_t n, float a, float b,
                    vk_selfcheck_result *out)
{
    for (uint32_t i = 0; i < n; i++) {
        float prod = a * x[i];
        float ref = prod + b;
        double err = isfinite(y[i]) ? fabs((double)y[i] - (double)ref) : INFINITY;
        if (i == 0 || err > out->max_abs_err) {
            out->max_abs_err = err;
            out->worst_index = i;
        }
        if (err > VK_SELFCHECK_TOL)
            out->mismatches++;
    }
    out->pass = out->mismatches == 0;
}

/* Buffers and kernel exist; uploads x, poisons y, dispatches, downloads into y_host. */
static vk_status run_kernel(vk_ctx *ctx, vk_buffer *bx, vk_buffer *by, const float *x,
                            float *y_host, uint32_t n, float a, float b)
{
    size_t bytes = (size_t)n * sizeof(float);
    memset(y_host, 0xff, bytes); /* all-ones bits: a quiet NaN in every lane */
    vk_status st = vk_buffer_upload(bx, 0, x, bytes);
    if (!st)
        st = vk_buffer_upload(by, 0, y_host, bytes);
    if (st)
        return st;
    const uint32_t spec[1] = { VK_SELFCHECK_WG };
    vk_kernel *k = NULL;
    st = vk_kernel_create(ctx, "selfcheck", 2, sizeof(vk_push_selfcheck), spec, 1, &k);
    if (st)
        return st;
    vk_push_selfcheck push = { .n = n, .a = a, .b = b };
    vk_buffer *bufs[2] = { bx, by };
    uint32_t groups[3] = { (n + VK_SELFCHECK_WG - 1) / VK_SELFCHECK_WG, 1, 1 };
    st = vk_kernel_run(k, bufs, &push, groups);
    vk_kernel_free(k);
    if (!st)
        st = vk_buffer_download(by, 0, y_host, bytes);
    return st;
}

vk_status vk_selfcheck(vk_ctx *ctx, uint32_t n, uint64_t seed, vk_selfcheck_result *out)
{
    memset(out, 0, sizeof *out);
    out->n = n;
    if (n == 0 || n > (1u << 24))
        return vk_set_error(ctx, VK_STATUS_BAD_ARG, "self-check size %u (want 1..%u)", n,
                            1u << 24);
    vk_status st = vk_ctx_start_device(ctx);
    if (st)
        return st;
    uint64_t s = seed ? seed : 0x9e3779b97f4a7c15ull; /* xorshift must not start at 0 */
    float a = next_float(&s, -2.0f, 2.0f), b = next_float(&s, -1.0f, 1.0f);
    float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    vk_buffer *bx = NULL, *by = NULL;
    if (!x || !y) {
        st = vk_set_error(ctx, VK_STATUS_NO_MEMORY, "out of memory for %u floats", n);
        goto done;
    }
    for (uint32_t i = 0; i < n; i++)
        x[i] = next_float(&s, -4.0f, 4.0f);
    st = vk_buffer_create(ctx, (uint64_t)n * sizeof(float), &bx);
    if (!st)
        st = vk_buffer_create(ctx, (uint64_t)n * sizeof(float), &by);
    if (!st)
        st = run_kernel(ctx, bx, by, x, y, n, a, b);
    if (!st)
        compare(x, y, n, a, b, out);
done:
    vk_buffer_free(by);
    vk_buffer_free(bx);
    free(y);
    free(x);
    return st;
}
