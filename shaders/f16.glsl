// float32 -> IEEE half conversion for the KV cache, bit for bit the CPU's eng_f32_to_f16
// (engine/quant.c): round to nearest, ties to even; 65520 and up become infinity; NaNs stay
// quiet NaNs. packHalf2x16 would be shorter, but its rounding mode is the driver's choice (some
// GPUs truncate), and the cache must hold the same bits whichever backend wrote it. Integer
// operations only, so no denormal flushing can change a result.

uint f32_bits_to_f16(uint x)
{
    uint sign = (x >> 16) & 0x8000u;
    uint ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u)
        return sign | 0x7e00u | ((ax >> 13) & 0x3ffu);
    if (ax >= 0x477ff000u)
        return sign | 0x7c00u;
    if (ax < 0x38800000u) {
        // Subnormal result, in units of 2^-24: the significand m (with its implicit bit) times
        // 2^(e - 126), e <= 112, so shift right by 126 - e and round the dropped bits.
        uint e = ax >> 23;
        if (e < 102u) // below 2^-25, or the 2^-25 tie itself: rounds to zero
            return sign;
        uint m = (ax & 0x7fffffu) | 0x800000u;
        uint shift = 126u - e; // 14 .. 24
        uint q = m >> shift;
        uint rem = m & ((1u << shift) - 1u);
        uint halfway = 1u << (shift - 1u);
        if (rem > halfway || (rem == halfway && (q & 1u) != 0u))
            q++; // 1024 is the smallest normal, which the same bits spell
        return sign | q;
    }
    // Normal: rebias the exponent (127 -> 15) and round the 13 dropped bits to even; a carry
    // out of the mantissa correctly bumps the exponent.
    uint odd = (ax >> 13) & 1u;
    return sign | ((ax - 0x38000000u + 0x0fffu + odd) >> 13);
}

uint f32_to_f16(float f)
{
    return f32_bits_to_f16(floatBitsToUint(f));
}

// Two values into one cache word: a in the low half (the lower address), b in the high half.
uint pack_f16x2(float a, float b)
{
    return f32_to_f16(a) | (f32_to_f16(b) << 16);
}
