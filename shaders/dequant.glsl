// Weight decoders of the matrix kernels: GGUF blocks read as raw bytes through 32-bit words,
// mirroring engine/quant.c and engine/quant_k.c operation for operation (same float products in
// the same order), so a decoded weight equals the CPU reference's up to fma contraction.
//
// Included by mul_mat.glsl after the W binding, WRD(i) (word i of W) and `w_last` (its last
// word index).
// The variant (shaders/variants.txt) defines exactly one TYPE_* macro; this file then defines
//   BLK, BLK_BYTES  the GGUF block: elements and bytes (rows are K / BLK blocks)
//   ITEM_GROUPS     ITEM / 32, for the preprocessor
//   ITEM            elements one decode_item call produces (the unit a lane works on: a block,
//                   half a K super-block, or 32 elements of a float row)
//   void decode_item(uint rb, uint it, out float v[ITEM])
//                   item `it` of the row starting at byte rb, in element order: v[j] is the
//                   weight of column it * ITEM + j.
//   void decode_group(uint rb, uint it, uint g, out float v[32])
//                   the same item's columns 32g .. 32g + 31 only (g < ITEM / 32, any value at
//                   run time), loading just the words those need: the unit of work where
//                   registers or code size matter more than a few repeated header loads.
// Blocks are 2-byte aligned at worst (every block size is even), so a field is at most 16 bits
// off a word boundary: LOAD_SPAN reads the words covering a byte range once and shifts them
// into place; types whose blocks are a multiple of 4 bytes read words directly.

// Word i, clamped to the buffer: only spans that may run past a row's end (float tails, the
// extra word of a misaligned span) need it.
uint wld(uint i) { return WRD(min(i, w_last)); }

// a[0 .. (NB+3)/4) = the bytes [B, B + NB) as little-endian words (B even, NB a constant). The
// top half of the last word is garbage when NB % 4 == 2.
#define LOAD_SPAN(a, NB, B) {                                                      \
    const uint nw_ = ((NB) + 3u) / 4u;                                             \
    uint i0_ = (B) >> 2;                                                           \
    bool odd_ = ((B) & 2u) != 0u;                                                  \
    uint cur_ = wld(i0_);                                                          \
    [[unroll]] for (uint j_ = 0u; j_ < nw_; j_++) {                                \
        uint nxt_ = (j_ + 1u < nw_ || ((NB) & 3u) == 0u) ? wld(i0_ + j_ + 1u) : 0u;  \
        a[j_] = odd_ ? ((cur_ >> 16) | (nxt_ << 16)) : cur_;                       \
        cur_ = nxt_;                                                               \
    } }

// Byte i (a constant after unrolling) of a word array.
#define BYTE(a, i) ((a[(i) >> 2] >> (8u * ((i) & 3u))) & 0xffu)
// Byte i as a signed 8-bit value.
#define SBYTE(a, i) bitfieldExtract(int(a[(i) >> 2]), int(8u * ((i) & 3u)), 8)

float f16_lo(uint u) { return unpackHalf2x16(u).x; }
float f16_hi(uint u) { return unpackHalf2x16(u).y; }

// The 32 quant bytes of a 32-element block as 8 words: word i holds bytes off + 4i .. off + 4i + 3
// of the aligned span a[] (off = 2 or 6 in the blocks that use this).
#define QWORD(a, off, i) (((off) & 3u) == 0u ? a[((off) >> 2) + (i)] \
    : ((a[((off) >> 2) + (i)] >> 16) | (a[((off) >> 2) + (i) + 1u] << 16)))

// Packed rows (W_TEXEL4, engine/vk_matmul.c vk_mm_pack_rows) for the types whose block is one
// f16 scale, HB high-bit bytes and QB quant bytes (Q4_0, Q5_0, Q8_0): the row's K/32 scales,
// then its K/32 high-bit words (Q5_0), each run padded to a multiple of 16 bytes, then its K/32
// quant runs, so a block's quants are whole 16-byte texels.
#define PACKED_PAD16(n) (((n) + 15u) / 16u * 16u)
#define PACKED_ROW_BYTES(K, HB, QB) \
    (PACKED_PAD16((K) / 16u) + PACKED_PAD16((K) / 32u * (HB)) + (K) / 32u * (QB))
#if defined(W_TEXEL4)
// The scale of block `it` of the packed row starting at byte rb.
float packed_scale(uint rb, uint it)
{
    uint sw = texelFetch(wtex4, int((rb >> 4) + (it >> 3)))[(it >> 1) & 3u];
    return (it & 1u) != 0u ? f16_hi(sw) : f16_lo(sw);
}
// The high-bit word of block `it` (4 bytes per block).
uint packed_high(uint rb, uint it)
{
    return texelFetch(wtex4, int(((rb + PACKED_PAD16(pc.K / 16u)) >> 4) + (it >> 2)))[it & 3u];
}
// The texel index of the row's first quant run.
uint packed_quants(uint rb, uint hb)
{
    return (rb + PACKED_PAD16(pc.K / 16u) + PACKED_PAD16(pc.K / 32u * hb)) >> 4;
}
#endif

// ---------------------------------------------------------------------------------------------
#if defined(TYPE_F32)
#define BLK 1u
#define BLK_BYTES 4u
#define ITEM 32u
#define ITEM_TAIL 1 // K need not be a multiple of ITEM: columns past K decode as 0
void decode_item(uint rb, uint it, out float v[ITEM])
{
    uint k0 = it * ITEM, i0 = (rb >> 2) + k0;
    [[unroll]] for (uint j = 0u; j < ITEM; j++)
        v[j] = k0 + j < pc.K ? uintBitsToFloat(wld(i0 + j)) : 0.0;
}

// ---------------------------------------------------------------------------------------------
#elif defined(TYPE_F16)
#define BLK 1u
#define BLK_BYTES 2u
#define ITEM 32u
#define ITEM_TAIL 1
void decode_item(uint rb, uint it, out float v[ITEM])
{
    uint k0 = it * ITEM;
    uint a[16];
    LOAD_SPAN(a, 64u, rb + 2u * k0);
    [[unroll]] for (uint i = 0u; i < 16u; i++) {
        vec2 h = unpackHalf2x16(a[i]);
        v[2u * i] = k0 + 2u * i < pc.K ? h.x : 0.0;
        v[2u * i + 1u] = k0 + 2u * i + 1u < pc.K ? h.y : 0.0;
    }
}

// ---------------------------------------------------------------------------------------------
#elif defined(TYPE_Q4_0)
// d (f16), qs[16]: element j in the low nibble of qs[j], j + 16 in the high nibble; q - 8.
#define BLK 32u
#define BLK_BYTES 18u
#define ITEM 32u
#if defined(W_TEXEL4)
#define ROW_BYTES(K) PACKED_ROW_BYTES(K, 0u, 16u)
void decode_item(uint rb, uint it, out float v[ITEM])
{
    float d = packed_scale(rb, it);
    uvec4 q4 = texelFetch(wtex4, int(packed_quants(rb, 0u) + it));
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        uint q = q4[i];
        [[unroll]] for (uint c = 0u; c < 4u; c++) {
            uint b = (q >> (8u * c)) & 0xffu;
            v[4u * i + c] = float(int(b & 15u) - 8) * d;
            v[4u * i + c + 16u] = float(int(b >> 4) - 8) * d;
        }
    }
}
#else
void decode_item(uint rb, uint it, out float v[ITEM])
{
    uint a[5];
    LOAD_SPAN(a, 18u, rb + it * 18u);
    float d = f16_lo(a[0]);
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        uint q = QWORD(a, 2u, i);
        [[unroll]] for (uint c = 0u; c < 4u; c++) {
            uint b = (q >> (8u * c)) & 0xffu;
            v[4u * i + c] = float(int(b & 15u) - 8) * d;
            v[4u * i + c + 16u] = float(int(b >> 4) - 8) * d;
        }
    }
}
#endif

// ---------------------------------------------------------------------------------------------
#elif defined(TYPE_Q4_1)
// d, m (f16), qs[16]: q * d + m. 20-byte blocks: always word aligned.
#define BLK 32u
#define BLK_BYTES 20u
#define ITEM 32u
void decode_item(uint rb, uint it, out float v[ITEM])
{
    uint i0 = (rb + it * 20u) >> 2;
    uint dm = WRD(i0);
    float d = f16_lo(dm), m = f16_hi(dm);
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        uint q = WRD(i0 + 1u + i);
        [[unroll]] for (uint c = 0u; c < 4u; c++) {
            uint b = (q >> (8u * c)) & 0xffu;
            v[4u * i + c] = float(b & 15u) * d + m;
            v[4u * i + c + 16u] = float(b >> 4) * d + m;
        }
    }
}

// ---------------------------------------------------------------------------------------------
#elif defined(TYPE_Q5_0)
// d, qh (bit 4 of element i in bit i), qs[16]; q - 16.
#define BLK 32u
#define BLK_BYTES 22u
#define ITEM 32u
#if defined(W_TEXEL4)
#define ROW_BYTES(K) PACKED_ROW_BYTES(K, 4u, 16u)
#endif
void decode_item(uint rb, uint it, out float v[ITEM])
{
#if defined(W_TEXEL4)
    float d = packed_scale(rb, it);
    uint qh = packed_high(rb, it);
    uvec4 q4 = texelFetch(wtex4, int(packed_quants(rb, 4u) + it));
    uint a[4] = uint[4](q4.x, q4.y, q4.z, q4.w);
#define Q5_WORD(i) a[i]
#else
    uint a[6];
    LOAD_SPAN(a, 22u, rb + it * 22u);
    float d = f16_lo(a[0]);
    uint qh = (a[0] >> 16) | (a[1] << 16);
#define Q5_WORD(i) QWORD(a, 6u, i)
#endif
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        uint q = Q5_WORD(i);
        [[unroll]] for (uint c = 0u; c < 4u; c++) {
            uint j = 4u * i + c;
            uint b = (q >> (8u * c)) & 0xffu;
            uint lo = (b & 15u) | ((qh >> j) & 1u) << 4;
            uint hi = (b >> 4) | ((qh >> (j + 16u)) & 1u) << 4;
            v[j] = float(int(lo) - 16) * d;
            v[j + 16u] = float(int(hi) - 16) * d;
        }
    }
}

// ---------------------------------------------------------------------------------------------
#elif defined(TYPE_Q5_1)
// d, m, qh, qs[16]; q * d + m. 24-byte blocks: always word aligned.
#define BLK 32u
#define BLK_BYTES 24u
#define ITEM 32u
void decode_item(uint rb, uint it, out float v[ITEM])
{
    uint i0 = (rb + it * 24u) >> 2;
    uint dm = WRD(i0), qh = WRD(i0 + 1u);
    float d = f16_lo(dm), m = f16_hi(dm);
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        uint q = WRD(i0 + 2u + i);
        [[unroll]] for (uint c = 0u; c < 4u; c++) {
            uint j = 4u * i + c;
            uint b = (q >> (8u * c)) & 0xffu;
            uint lo = (b & 15u) | ((qh >> j) & 1u) << 4;
            uint hi = (b >> 4) | ((qh >> (j + 16u)) & 1u) << 4;
            v[j] = float(lo) * d + m;
            v[j + 16u] = float(hi) * d + m;
        }
    }
}

// ---------------------------------------------------------------------------------------------
#elif defined(TYPE_Q8_0)
// d, qs[32] (int8).
#define BLK 32u
#define BLK_BYTES 34u
#define ITEM 32u
#if defined(W_TEXEL4)
#define ROW_BYTES(K) PACKED_ROW_BYTES(K, 0u, 32u)
void decode_item(uint rb, uint it, out float v[ITEM])
{
    float d = packed_scale(rb, it);
    uint qv = packed_quants(rb, 0u) + 2u * it;
    uvec4 q0 = texelFetch(wtex4, int(qv)), q1 = texelFetch(wtex4, int(qv + 1u));
    uint qw[8] = uint[8](q0.x, q0.y, q0.z, q0.w, q1.x, q1.y, q1.z, q1.w);
    [[unroll]] for (uint i = 0u; i < 8u; i++)
        [[unroll]] for (uint c = 0u; c < 4u; c++)
            v[4u * i + c] = float(bitfieldExtract(int(qw[i]), int(8u * c), 8)) * d;
}
#else
void decode_item(uint rb, uint it, out float v[ITEM])
{
    uint a[9];
    LOAD_SPAN(a, 34u, rb + it * 34u);
    float d = f16_lo(a[0]);
    [[unroll]] for (uint i = 0u; i < 8u; i++) {
        int q = int(QWORD(a, 2u, i));
        [[unroll]] for (uint c = 0u; c < 4u; c++)
            v[4u * i + c] = float(bitfieldExtract(q, int(8u * c), 8)) * d;
    }
}
#endif

// ---------------------------------------------------------------------------------------------
#elif defined(TYPE_Q2_K)
// scales[16] (scale low nibble, min high), qs[64] (2 bits), d, dmin. 84 bytes: word aligned.
// Item = half h of the super-block: element 32s + 16g + l takes bits 2s of qs[32h + 16g + l],
// sub-block 8h + 2s + g.
#define BLK 256u
#define BLK_BYTES 84u
#define ITEM 128u
#define ITEM_GROUPS 4
void decode_item(uint rb, uint it, out float v[ITEM])
{
    uint h = it & 1u;
    uint i0 = (rb + (it >> 1) * 84u) >> 2;
    uint sc[2], qs[8];
    sc[0] = WRD(i0 + 2u * h);
    sc[1] = WRD(i0 + 2u * h + 1u);
    [[unroll]] for (uint i = 0u; i < 8u; i++)
        qs[i] = WRD(i0 + 4u + 8u * h + i);
    uint dd = WRD(i0 + 20u);
    float d = f16_lo(dd), dmin = f16_hi(dd);
    [[unroll]] for (uint s = 0u; s < 4u; s++)
        [[unroll]] for (uint g = 0u; g < 2u; g++) {
            uint scb = BYTE(sc, 2u * s + g);
            float dl = d * float(scb & 15u), ml = dmin * float(scb >> 4);
            [[unroll]] for (uint l = 0u; l < 16u; l++) {
                uint q = (BYTE(qs, 16u * g + l) >> (2u * s)) & 3u;
                v[32u * s + 16u * g + l] = dl * float(q) - ml;
            }
        }
}

void decode_group(uint rb, uint it, uint s, out float v[32])
{
    uint h = it & 1u;
    uint i0 = (rb + (it >> 1) * 84u) >> 2;
    uint scw = WRD(i0 + 2u * h + (s >> 1)) >> (16u * (s & 1u)); // scales[8h + 2s], [8h + 2s + 1]
    uint dd = WRD(i0 + 20u);
    float d = f16_lo(dd), dmin = f16_hi(dd);
    float dl[2], ml[2];
    [[unroll]] for (uint g = 0u; g < 2u; g++) {
        uint scb = (scw >> (8u * g)) & 0xffu;
        dl[g] = d * float(scb & 15u);
        ml[g] = dmin * float(scb >> 4);
    }
    [[unroll]] for (uint i = 0u; i < 8u; i++) {
        uint q = WRD(i0 + 4u + 8u * h + i) >> (2u * s);
        [[unroll]] for (uint b = 0u; b < 4u; b++)
            v[4u * i + b] = dl[i / 4u] * float((q >> (8u * b)) & 3u) - ml[i / 4u];
    }
}

// ---------------------------------------------------------------------------------------------
#elif defined(TYPE_Q3_K)
// hmask[32], qs[64] (low 2 bits), scales[12] (sixteen 6-bit, offset 32), d. 110 bytes.
// Item = half h: element 32s + 16g + l: bits 2s of qs[32h + 16g + l], third bit in bit 4h + s
// of hmask[16g + l] (set: upper half, no -4), sub-block 8h + 2s + g.
#define BLK 256u
#define BLK_BYTES 110u
#define ITEM 128u
#define ITEM_GROUPS 4
// The spans half h = it & 1 of super-block it >> 1 reads: hmask, its half of qs, the scales;
// returns d.
float q3k_load(uint rb, uint it, out uint hm[8], out uint qs[8], out uint sc[3])
{
    uint b0 = rb + (it >> 1) * 110u;
    uint dw[1];
    LOAD_SPAN(hm, 32u, b0);
    LOAD_SPAN(qs, 32u, b0 + 32u + 32u * (it & 1u));
    LOAD_SPAN(sc, 12u, b0 + 96u);
    LOAD_SPAN(dw, 2u, b0 + 108u);
    return f16_lo(dw[0]);
}

void decode_item(uint rb, uint it, out float v[ITEM])
{
    uint h = it & 1u;
    uint hm[8], qs[8], sc[3];
    float d = q3k_load(rb, it, hm, qs, sc);
    [[unroll]] for (uint s = 0u; s < 4u; s++)
        [[unroll]] for (uint g = 0u; g < 2u; g++) {
            // sub-block i = 8h + 2s + g: low 4 bits in nibble h of byte (2s + g), top 2 bits at
            // bit 2(i / 4) of byte 8 + (2s + g) % 4
            uint ii = 2u * s + g;
            uint lo = (BYTE(sc, ii) >> (4u * h)) & 15u;
            uint hi = (BYTE(sc, 8u + (ii & 3u)) >> (2u * (2u * h + (ii >> 2)))) & 3u;
            float dl = d * float(int(lo | hi << 4) - 32);
            uint m = 1u << (4u * h + s);
            [[unroll]] for (uint l = 0u; l < 16u; l++) {
                int q = int((BYTE(qs, 16u * g + l) >> (2u * s)) & 3u);
                q -= (BYTE(hm, 16u * g + l) & m) != 0u ? 0 : 4;
                v[32u * s + 16u * g + l] = dl * float(q);
            }
        }
}

void decode_group(uint rb, uint it, uint s, out float v[32])
{
    uint h = it & 1u;
    uint hm[8], qs[8], sc[3];
    float d = q3k_load(rb, it, hm, qs, sc);
    float dl[2];
    [[unroll]] for (uint g = 0u; g < 2u; g++) {
        uint ii = 2u * s + g; // 0..7, as in decode_item
        uint lo = ((ii < 4u ? sc[0] : sc[1]) >> (8u * (ii & 3u) + 4u * h)) & 15u;
        uint hi = (sc[2] >> (8u * (ii & 3u) + 2u * (2u * h + (ii >> 2)))) & 3u;
        dl[g] = d * float(int(lo | hi << 4) - 32);
    }
    uint m = 1u << (4u * h + s);
    [[unroll]] for (uint l = 0u; l < 32u; l++) {
        int q = int((BYTE(qs, l) >> (2u * s)) & 3u);
        q -= (BYTE(hm, l) & m) != 0u ? 0 : 4;
        v[l] = dl[l / 16u] * float(q);
    }
}

// ---------------------------------------------------------------------------------------------
#elif defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
// d, dmin, scales[12] (eight 6-bit scales and mins, see k4_scale_min in quant_k.c),
// [Q5_K: qh[32]], qs[128]. 144 / 176 bytes: word aligned. Item = half h = chunks c = 2h, 2h + 1
// of 64: element l of chunk c in the low nibble of qs[32c + l], 32 + l in the high nibble,
// sub-blocks 2c and 2c + 1 (Q5_K: bit 4 from bit 2c / 2c + 1 of qh[l]).
#define BLK 256u
#ifdef TYPE_Q4_K
#define BLK_BYTES 144u
#define QS_WORD 4u
#else
#define BLK_BYTES 176u
#define QS_WORD 12u
#endif
#define ITEM 128u
#define ITEM_GROUPS 4

// Scale and min of sub-block 4h + jj (jj = 0..3), from the three scale words s0, s1, s2.
void k4_scale_min(uint h, uint jj, uint s0, uint s1, uint s2, out float sc, out float mn)
{
    uint a = (s0 >> (8u * jj)) & 0xffu, b = (s1 >> (8u * jj)) & 0xffu;
    uint c = (s2 >> (8u * jj)) & 0xffu;
    uint sc_i = h == 0u ? a & 63u : (c & 15u) | (a >> 6) << 4;
    uint mn_i = h == 0u ? b & 63u : (c >> 4) | (b >> 6) << 4;
    sc = float(sc_i);
    mn = float(mn_i);
}

// The 8 words [i0 + o, i0 + o + 8) (o a multiple of 4): with W_TEXEL4 two 16-byte texels, as
// super-blocks (144 / 176 bytes) and rows start on 16-byte boundaries.
void k4_words8(uint i0, uint o, out uint a[8])
{
#if defined(W_TEXEL4)
    int t = int((i0 + o) >> 2);
    uvec4 t0 = texelFetch(wtex4, t), t1 = texelFetch(wtex4, t + 1);
    a = uint[8](t0.x, t0.y, t0.z, t0.w, t1.x, t1.y, t1.z, t1.w);
#else
    [[unroll]] for (uint i = 0u; i < 8u; i++)
        a[i] = WRD(i0 + o + i);
#endif
}

// The header words: d and dmin, then the three scale words.
void k4_head(uint i0, out uint dm, out uint s0, out uint s1, out uint s2)
{
#if defined(W_TEXEL4)
    uvec4 t = texelFetch(wtex4, int(i0 >> 2));
    dm = t.x, s0 = t.y, s1 = t.z, s2 = t.w;
#else
    dm = WRD(i0), s0 = WRD(i0 + 1u), s1 = WRD(i0 + 2u), s2 = WRD(i0 + 3u);
#endif
}

void decode_item(uint rb, uint it, out float v[ITEM])
{
    uint h = it & 1u;
    uint i0 = (rb + (it >> 1) * BLK_BYTES) >> 2;
    uint dm, s0, s1, s2;
    k4_head(i0, dm, s0, s1, s2);
    float d = f16_lo(dm), dmin = f16_hi(dm);
#ifdef TYPE_Q5_K
    uint qh[8];
    k4_words8(i0, 4u, qh);
#endif
    [[unroll]] for (uint cc = 0u; cc < 2u; cc++) {
        uint c = 2u * h + cc;
        float sc0, mn0, sc1, mn1;
        k4_scale_min(h, 2u * cc, s0, s1, s2, sc0, mn0);
        k4_scale_min(h, 2u * cc + 1u, s0, s1, s2, sc1, mn1);
        float d0 = d * sc0, m0 = dmin * mn0, d1 = d * sc1, m1 = dmin * mn1;
        uint qs[8];
        k4_words8(i0, QS_WORD + 8u * c, qs);
        [[unroll]] for (uint i = 0u; i < 8u; i++) {
            uint q = qs[i];
            [[unroll]] for (uint b = 0u; b < 4u; b++) {
                uint l = 4u * i + b;
                uint lo = (q >> (8u * b)) & 15u, hi = (q >> (8u * b + 4u)) & 15u;
#ifdef TYPE_Q5_K
                uint hb = BYTE(qh, l);
                lo |= ((hb >> (2u * c)) & 1u) << 4;
                hi |= ((hb >> (2u * c + 1u)) & 1u) << 4;
#endif
                v[64u * cc + l] = d0 * float(lo) - m0;
                v[64u * cc + 32u + l] = d1 * float(hi) - m1;
            }
        }
    }
}

// Group g = sub-block 4h + g: chunk 2h + g / 2, low nibbles for even g, high for odd.
void decode_group(uint rb, uint it, uint g, out float v[32])
{
    uint h = it & 1u;
    uint i0 = (rb + (it >> 1) * BLK_BYTES) >> 2;
    uint dm = WRD(i0), s0 = WRD(i0 + 1u), s1 = WRD(i0 + 2u), s2 = WRD(i0 + 3u);
    float d = f16_lo(dm), dmin = f16_hi(dm);
    uint c = 2u * h + (g >> 1), nib = 4u * (g & 1u);
    float sc, mn;
    k4_scale_min(h, g, s0, s1, s2, sc, mn);
    float d0 = d * sc, m0 = dmin * mn;
    [[unroll]] for (uint i = 0u; i < 8u; i++) {
        uint q = WRD(i0 + QS_WORD + 8u * c + i) >> nib;
#ifdef TYPE_Q5_K
        uint qh = WRD(i0 + 4u + i) >> (2u * c + (g & 1u));
#endif
        [[unroll]] for (uint b = 0u; b < 4u; b++) {
            uint x = (q >> (8u * b)) & 15u;
#ifdef TYPE_Q5_K
            x |= ((qh >> (8u * b)) & 1u) << 4;
#endif
            v[4u * i + b] = d0 * float(x) - m0;
        }
    }
}

// ---------------------------------------------------------------------------------------------
#elif defined(TYPE_Q6_K)
// ql[128] (low nibbles), qh[64] (high 2 bits), scales[16] (int8), d. 210 bytes.
// Item = half h: for l < 32, elements l, l + 32, l + 64, l + 96 from ql[64h + l] (low nibble),
// ql[64h + l + 32] (low), ql[64h + l] (high), ql[64h + l + 32] (high) with bits 0, 2, 4, 6 of
// qh[32h + l]; scale of sub-block 8h + l / 16 + 2 * (which of the four).
#define BLK 256u
#define BLK_BYTES 210u
#define ITEM 128u
#define ITEM_GROUPS 4
void decode_item(uint rb, uint it, out float v[ITEM])
{
    uint h = it & 1u;
    uint b0 = rb + (it >> 1) * 210u;
    uint ql[16], qh[8], sc[2], dw[1];
    LOAD_SPAN(ql, 64u, b0 + 64u * h);
    LOAD_SPAN(qh, 32u, b0 + 128u + 32u * h);
    LOAD_SPAN(sc, 8u, b0 + 192u + 8u * h);
    LOAD_SPAN(dw, 2u, b0 + 208u);
    float d = f16_lo(dw[0]);
    float ds[8];
    [[unroll]] for (uint i = 0u; i < 8u; i++)
        ds[i] = d * float(SBYTE(sc, i));
    [[unroll]] for (uint l = 0u; l < 32u; l++) {
        uint g = l / 16u;
        uint a = BYTE(ql, l), b = BYTE(ql, l + 32u), hb = BYTE(qh, l);
        int q0 = int((a & 15u) | (hb & 3u) << 4) - 32;
        int q1 = int((b & 15u) | ((hb >> 2) & 3u) << 4) - 32;
        int q2 = int((a >> 4) | ((hb >> 4) & 3u) << 4) - 32;
        int q3 = int((b >> 4) | ((hb >> 6) & 3u) << 4) - 32;
        v[l] = ds[g] * float(q0);
        v[l + 32u] = ds[g + 2u] * float(q1);
        v[l + 64u] = ds[g + 4u] * float(q2);
        v[l + 96u] = ds[g + 6u] * float(q3);
    }
}

// Group q: columns l + 32q of the half, from the low (q < 2) or high nibbles of
// ql[64h + 32(q & 1) + l], bits 2q of qh[32h + l], scales 8h + 2q + l / 16.
void decode_group(uint rb, uint it, uint q, out float v[32])
{
    uint h = it & 1u;
    uint b0 = rb + (it >> 1) * 210u;
    uint ql[8], qh[8], sc[1], dw[1];
    LOAD_SPAN(ql, 32u, b0 + 64u * h + 32u * (q & 1u));
    LOAD_SPAN(qh, 32u, b0 + 128u + 32u * h);
    LOAD_SPAN(sc, 2u, b0 + 192u + 8u * h + 2u * q);
    LOAD_SPAN(dw, 2u, b0 + 208u);
    float d = f16_lo(dw[0]);
    float ds[2];
    ds[0] = d * float(SBYTE(sc, 0u));
    ds[1] = d * float(SBYTE(sc, 1u));
    uint nib = 4u * (q >> 1), hs = 2u * q;
    [[unroll]] for (uint l = 0u; l < 32u; l++) {
        uint x = ((BYTE(ql, l) >> nib) & 15u) | ((BYTE(qh, l) >> hs) & 3u) << 4;
        v[l] = ds[l / 16u] * float(int(x) - 32);
    }
}

#else
#error "define one TYPE_* before including mul_mat.glsl"
#endif

#ifndef ITEM_TAIL
#define ITEM_TAIL 0
#endif

#ifndef ROW_BYTES
#define ROW_BYTES(K) ((K) / BLK * BLK_BYTES)
#endif

#ifndef ITEM_GROUPS
#define ITEM_GROUPS 1
void decode_group(uint rb, uint it, uint g, out float v[32]) { decode_item(rb, it, v); }
#endif
