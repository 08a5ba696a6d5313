/* The "K" quantization types: 256-element super-blocks split into 16 or 8 sub-blocks, each
 * with its own scale (and for Q2_K, Q4_K, Q5_K its own minimum) stored in 4 or 6 bits against
 * one or two fp16 super-block factors.
 *
 * Decoders for Q2_K .. Q6_K follow ggml-common.h's layouts; each computes a value with the same
 * float operations in the same order as ggml's dequantize_row_*, so our float32 weights equal
 * llama.cpp's bit for bit. Encoders exist for Q4_K, Q5_K and Q6_K, following ggml's reference
 * (no importance matrix) quantizers, again operation for operation, so that a file we write
 * holds the bytes llama-quantize writes for the same input.
 *
 * Element order inside a super-block, shared by Q2_K, Q3_K and Q6_K: the block is two halves of
 * 128; within a half, element 32*s + l (s = 0..3, l = 0..31) takes bits 2s..2s+1 (Q6_K: a nibble
 * and two high bits) of byte l of that half's quant bytes. Q4_K and Q5_K instead use four
 * chunks of 64, element l of a chunk in the low nibble of byte l and element 32 + l in the high
 * nibble.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine/quant_internal.h"

/* ---- decoders ---- */

void quant_dequant_q2_k(const void *restrict src, float *restrict y, int64_t nb)
{
    const blk_q2_k *restrict b = src;
    for (int64_t i = 0; i < nb; i++, b++, y += QUANT_QK_K) {
        float d = quant_f16(b->d), dmin = quant_f16(b->dmin);
        for (int h = 0; h < 2; h++)
            for (int s = 0; s < 4; s++)
                for (int g = 0; g < 2; g++) { /* two sub-blocks of 16 per bit pair */
                    const uint8_t *q = b->qs + 32 * h + 16 * g;
                    uint8_t sc = b->scales[8 * h + 2 * s + g];
                    float dl = d * (float)(sc & 0x0f), ml = dmin * (float)(sc >> 4);
                    float *o = y + 128 * h + 32 * s + 16 * g;
                    for (int l = 0; l < 16; l++)
                        o[l] = dl * (float)((q[l] >> (2 * s)) & 3) - ml;
                }
    }
}

void quant_dequant_q3_k(const void *restrict src, float *restrict y, int64_t nb)
{
    const blk_q3_k *restrict b = src;
    for (int64_t i = 0; i < nb; i++, b++, y += QUANT_QK_K) {
        float d = quant_f16(b->d);
        int sc[16];
        q3k_scales(b->scales, sc);
        for (int h = 0; h < 2; h++)
            for (int s = 0; s < 4; s++) {
                uint8_t m = (uint8_t)(1u << (4 * h + s));
                for (int g = 0; g < 2; g++) {
                    const uint8_t *q = b->qs + 32 * h + 16 * g, *hm = b->hmask + 16 * g;
                    float dl = d * (float)sc[8 * h + 2 * s + g];
                    float *o = y + 128 * h + 32 * s + 16 * g;
                    for (int l = 0; l < 16; l++) {
                        /* the stored third bit is set for the upper half: 3 bits = -4..3 */
                        int v = ((q[l] >> (2 * s)) & 3) - ((hm[l] & m) ? 0 : 4);
                        o[l] = dl * (float)v;
                    }
                }
            }
    }
}

void quant_dequant_q4_k(const void *restrict src, float *restrict y, int64_t nb)
{
    const blk_q4_k *restrict b = src;
    for (int64_t i = 0; i < nb; i++, b++, y += QUANT_QK_K) {
        float d = quant_f16(b->d), dmin = quant_f16(b->dmin);
        for (int c = 0; c < 4; c++) {
            int sc0, mn0, sc1, mn1;
            k4_scale_min(b->scales, 2 * c, &sc0, &mn0);
            k4_scale_min(b->scales, 2 * c + 1, &sc1, &mn1);
            float d0 = d * (float)sc0, m0 = dmin * (float)mn0;
            float d1 = d * (float)sc1, m1 = dmin * (float)mn1;
            const uint8_t *q = b->qs + 32 * c;
            float *o = y + 64 * c;
            for (int l = 0; l < 32; l++) {
                o[l] = d0 * (float)(q[l] & 0x0f) - m0;
                o[l + 32] = d1 * (float)(q[l] >> 4) - m1;
            }
        }
    }
}

void quant_dequant_q5_k(const void *restrict src, float *restrict y, int64_t nb)
{
    const blk_q5_k *restrict b = src;
    for (int64_t i = 0; i < nb; i++, b++, y += QUANT_QK_K) {
        float d = quant_f16(b->d), dmin = quant_f16(b->dmin);
        for (int c = 0; c < 4; c++) {
            int sc0, mn0, sc1, mn1;
            k4_scale_min(b->scales, 2 * c, &sc0, &mn0);
            k4_scale_min(b->scales, 2 * c + 1, &sc1, &mn1);
            float d0 = d * (float)sc0, m0 = dmin * (float)mn0;
            float d1 = d * (float)sc1, m1 = dmin * (float)mn1;
            const uint8_t *q = b->qs + 32 * c;
            float *o = y + 64 * c;
            for (int l = 0; l < 32; l++) {
                int lo = (q[l] & 0x0f) | ((b->qh[l] >> (2 * c)) & 1) << 4;
                int hi = (q[l] >> 4) | ((b->qh[l] >> (2 * c + 1)) & 1) << 4;
                o[l] = d0 * (float)lo - m0;
                o[l + 32] = d1 * (float)hi - m1;
            }
        }
    }
}

void quant_dequant_q6_k(const void *restrict src, float *restrict y, int64_t nb)
{
    const blk_q6_k *restrict b = src;
    for (int64_t i = 0; i < nb; i++, b++, y += QUANT_QK_K) {
        float d = quant_f16(b->d);
        for (int h = 0; h < 2; h++)
            for (int g = 0; g < 2; g++) { /* 16 elements sharing a scale in each quarter */
                const uint8_t *ql = b->ql + 64 * h + 16 * g, *qh = b->qh + 32 * h + 16 * g;
                const int8_t *sc = b->scales + 8 * h + g;
                float d0 = d * (float)sc[0], d1 = d * (float)sc[2];
                float d2 = d * (float)sc[4], d3 = d * (float)sc[6];
                float *o = y + 128 * h + 16 * g;
                for (int l = 0; l < 16; l++) {
                    int q0 = ((ql[l] & 0x0f) | ((qh[l] >> 0) & 3) << 4) - 32;
                    int q1 = ((ql[l + 32] & 0x0f) | ((qh[l] >> 2) & 3) << 4) - 32;
                    int q2 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                    int q3 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                    o[l] = d0 * (float)q0;
                    o[l + 32] = d1 * (float)q1;
                    o[l + 64] = d2 * (float)q2;
                    o[l + 96] = d3 * (float)q3;
                }
            }
    }
}

/* ---- encoders ---- */

static int clampi(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Error of x ~ scale * L + min under weights w: sum of w * diff^2. */
static float fit_error(int n, const float *x, const float *w, const uint8_t *L, float scale,
                       float min)
{
    float err = 0.0f;
    for (int i = 0; i < n; i++) {
        float diff = scale * (float)L[i] + min - x[i];
        err += w[i] * (diff * diff);
    }
    return err;
}

/* Codes of x under x ~ (L / iscale) + min, L in 0..nmax; returns the weighted sums a least
 * squares fit of (scale, min) to those codes needs. */
static void fit_codes(int n, int nmax, const float *x, const float *w, float iscale, float min,
                      uint8_t *L, float *sum_l, float *sum_l2, float *sum_xl)
{
    float sl = 0.0f, sl2 = 0.0f, sxl = 0.0f;
    for (int i = 0; i < n; i++) {
        int l = clampi(quant_round(iscale * (x[i] - min)), 0, nmax);
        L[i] = (uint8_t)l;
        sl += w[i] * (float)l;
        sl2 += w[i] * (float)l * (float)l;
        sxl += w[i] * (float)l * x[i];
    }
    *sum_l = sl;
    *sum_l2 = sl2;
    *sum_xl = sxl;
}

/* ggml's make_qkx2_quants with squared error: fit x ~ scale * L - neg_min (neg_min >= 0) with
 * codes L in 0..nmax. Start from the plain min..max mapping, then try nstep + 1 stretched
 * mappings (nmax + rmin + rdelta * k steps over the range), refit scale and min to each one's
 * codes by weighted least squares, and keep the best. Returns the scale; L gets the codes. */
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L,
                           float *neg_min, float rmin, float rdelta, int nstep)
{
    float min = x[0], max = x[0], sum_w = 0.0f, sum_x = 0.0f;
    for (int i = 0; i < n; i++) {
        min = x[i] < min ? x[i] : min;
        max = x[i] > max ? x[i] : max;
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0.0f)
        min = 0.0f;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *neg_min = -min;
        return 0.0f;
    }
    float iscale = (float)nmax / (max - min), scale = 1.0f / iscale;
    for (int i = 0; i < n; i++)
        L[i] = (uint8_t)clampi(quant_round(iscale * (x[i] - min)), 0, nmax);
    float best = fit_error(n, x, w, L, scale, min);
    uint8_t Laux[32];
    for (int k = 0; k <= nstep; k++) {
        float sum_l, sum_l2, sum_xl;
        iscale = (rmin + rdelta * (float)k + (float)nmax) / (max - min);
        fit_codes(n, nmax, x, w, iscale, min, Laux, &sum_l, &sum_l2, &sum_xl);
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (!(D > 0.0f))
            continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (this_min > 0.0f) { /* a positive offset cannot be stored: refit without one */
            this_min = 0.0f;
            this_scale = sum_xl / sum_l2;
        }
        float err = fit_error(n, x, w, Laux, this_scale, this_min);
        if (err < best) {
            memcpy(L, Laux, (size_t)n);
            best = err;
            scale = this_scale;
            min = this_min;
        }
    }
    *neg_min = -min;
    return scale;
}

/* Set Q4_K's packed scale and min of sub-block j (both 0..63); see k4_scale_min. */
static void k4_put_scale_min(uint8_t s[12], int j, int sc, int mn)
{
    if (j < 4) {
        s[j] |= (uint8_t)sc;
        s[j + 4] |= (uint8_t)mn;
    } else {
        s[j + 4] |= (uint8_t)((sc & 0x0f) | (mn & 0x0f) << 4);
        s[j - 4] |= (uint8_t)((sc >> 4) << 6);
        s[j] |= (uint8_t)((mn >> 4) << 6);
    }
}

/* The part ggml's quantize_row_q4_K_ref and quantize_row_q5_K_ref share, for one super-block:
 * fit each sub-block of 32 to codes 0..nmax with a scale and a min (weighting each element by
 * the sub-block's RMS plus its magnitude; Q4_K searches 21 stretches from -1, Q5_K 16 from
 * -0.5), store the scales and mins as 6-bit multiples of two fp16 factors (d, dmin, scales),
 * then recode every element into L against the scale and min actually stored. */
static void k_scale_min_codes(const float *x, int nmax, float rmin, int nstep, uint8_t d[2],
                              uint8_t dmin[2], uint8_t scales_out[12], uint8_t L[QUANT_QK_K])
{
    float scales[8], mins[8], w[32], max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 8; j++) {
        const float *xs = x + 32 * j;
        float sum_x2 = 0.0f;
        for (int l = 0; l < 32; l++)
            sum_x2 += xs[l] * xs[l];
        float av = sqrtf(sum_x2 / 32.0f);
        for (int l = 0; l < 32; l++)
            w[l] = av + fabsf(xs[l]);
        scales[j] = fit_scale_min(32, nmax, xs, w, L + 32 * j, &mins[j], rmin, 0.1f, nstep);
        max_scale = scales[j] > max_scale ? scales[j] : max_scale;
        max_min = mins[j] > max_min ? mins[j] : max_min;
    }
    float inv_scale = max_scale > 0.0f ? 63.0f / max_scale : 0.0f;
    float inv_min = max_min > 0.0f ? 63.0f / max_min : 0.0f;
    memset(scales_out, 0, 12);
    for (int j = 0; j < 8; j++)
        k4_put_scale_min(scales_out, j, clampi(quant_round(inv_scale * scales[j]), 0, 63),
                         clampi(quant_round(inv_min * mins[j]), 0, 63));
    quant_put_f16(d, max_scale / 63.0f);
    quant_put_f16(dmin, max_min / 63.0f);
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        k4_scale_min(scales_out, j, &sc, &mn);
        float dj = quant_f16(d) * (float)sc;
        if (dj == 0.0f)
            continue;
        float dm = quant_f16(dmin) * (float)mn;
        for (int l = 0; l < 32; l++)
            L[32 * j + l] = (uint8_t)clampi(quant_round((x[32 * j + l] + dm) / dj), 0, nmax);
    }
}

/* ggml's quantize_row_q4_K_ref for one super-block: 4-bit codes, element l of chunk c in the
 * low nibble of byte l, element 32 + l in the high one. */
static void encode_q4_k_block(const float *x, blk_q4_k *b)
{
    uint8_t L[QUANT_QK_K];
    k_scale_min_codes(x, 15, -1.0f, 20, b->d, b->dmin, b->scales, L);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++)
            b->qs[32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
}

/* ggml's quantize_row_q5_K_ref for one super-block: Q4_K's layout for the low 4 bits of 5-bit
 * codes, bit 4 of element 64c + l (64c + 32 + l) in bit 2c (2c + 1) of qh[l]. */
static void encode_q5_k_block(const float *x, blk_q5_k *b)
{
    uint8_t L[QUANT_QK_K];
    k_scale_min_codes(x, 31, -0.5f, 15, b->d, b->dmin, b->scales, L);
    memset(b->qh, 0, sizeof b->qh);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
            b->qh[l] |= (uint8_t)((lo >> 4) << (2 * c) | (hi >> 4) << (2 * c + 1));
            b->qs[32 * c + l] = (uint8_t)((lo & 0x0f) | (hi & 0x0f) << 4);
        }
}

void quant_encode_q5_k(const float *src, void *dst, int64_t nb)
{
    blk_q5_k *b = dst;
    for (int64_t i = 0; i < nb; i++)
        encode_q5_k_block(src + QUANT_QK_K * i, b + i);
}

void quant_encode_q4_k(const float *src, void *dst, int64_t nb)
{
    blk_q4_k *b = dst;
    for (int64_t i = 0; i < nb; i++)
        encode_q4_k_block(src + QUANT_QK_K * i, b + i);
}

/* Weighted (w = x^2) sums of x * l and l^2 for the symmetric codes l = round(iscale * x)
 * clamped to -nmax..nmax-1; L (when not NULL) gets l + nmax. */
static void sym_codes(int n, int nmax, const float *x, float iscale, int8_t *L, float *sumlx,
                      float *suml2)
{
    float slx = 0.0f, sl2 = 0.0f;
    for (int i = 0; i < n; i++) {
        int l = clampi(quant_round(iscale * x[i]), -nmax, nmax - 1);
        if (L)
            L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        slx += w * x[i] * (float)l;
        sl2 += w * (float)l * (float)l;
    }
    *sumlx = slx;
    *suml2 = sl2;
}

/* ggml's make_qx_quants (weights x^2, full search): symmetric codes -nmax..nmax-1 with the
 * element of largest magnitude at -nmax; try 18 slightly different stretches and keep the one
 * whose least-squares scale explains most of sum w x^2. Returns the scale (negative when the
 * largest element is positive); L gets codes + nmax. */
static float fit_symmetric(int n, int nmax, const float *x, int8_t *L)
{
    float max = 0.0f, amax = 0.0f;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    if (amax < 1e-15f) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float sumlx, suml2;
    float iscale = -(float)nmax / max;
    sym_codes(n, nmax, x, iscale, L, &sumlx, &suml2);
    float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int k = -9; k <= 9; k++) {
        if (k == 0)
            continue;
        iscale = -((float)nmax + 0.1f * (float)k) / max;
        sym_codes(n, nmax, x, iscale, NULL, &sumlx, &suml2);
        if (suml2 > 0.0f && sumlx * sumlx > best * suml2) {
            sym_codes(n, nmax, x, iscale, L, &sumlx, &suml2);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* ggml's quantize_row_q6_K_ref for one super-block: fit each sub-block of 16 to 6-bit
 * symmetric codes, store the sixteen scales as signed 8-bit multiples of one fp16 factor (the
 * largest at -128), then recode every element against the scale actually stored. */
static void encode_q6_k_block(const float *x, blk_q6_k *b)
{
    int8_t L[QUANT_QK_K];
    float scales[16], max_scale = 0.0f, max_abs = 0.0f;
    for (int j = 0; j < 16; j++) {
        scales[j] = fit_symmetric(16, 32, x + 16 * j, L + 16 * j);
        if (fabsf(scales[j]) > max_abs) {
            max_abs = fabsf(scales[j]);
            max_scale = scales[j];
        }
    }
    if (max_abs < 1e-15f) {
        memset(b, 0, sizeof *b);
        return;
    }
    float iscale = -128.0f / max_scale;
    quant_put_f16(b->d, 1.0f / iscale);
    for (int j = 0; j < 16; j++)
        b->scales[j] = (int8_t)clampi(quant_round(iscale * scales[j]), -128, 127);
    for (int j = 0; j < 16; j++) {
        float d = quant_f16(b->d) * (float)b->scales[j];
        if (d == 0.0f)
            continue;
        for (int l = 0; l < 16; l++)
            L[16 * j + l] = (int8_t)(clampi(quant_round(x[16 * j + l] / d), -32, 31) + 32);
    }
    for (int h = 0; h < 2; h++) {
        const int8_t *Lh = L + 128 * h;
        uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
        for (int l = 0; l < 32; l++) {
            ql[l] = (uint8_t)((Lh[l] & 0x0f) | (Lh[l + 64] & 0x0f) << 4);
            ql[l + 32] = (uint8_t)((Lh[l + 32] & 0x0f) | (Lh[l + 96] & 0x0f) << 4);
            qh[l] = (uint8_t)(Lh[l] >> 4 | (Lh[l + 32] >> 4) << 2 | (Lh[l + 64] >> 4) << 4 |
                              (Lh[l + 96] >> 4) << 6);
        }
    }
}

void quant_encode_q6_k(const float *src, void *dst, int64_t nb)
{
    blk_q6_k *b = dst;
    for (int64_t i = 0; i < nb; i++)
        encode_q6_k_block(src + QUANT_QK_K * i, b + i);
}
