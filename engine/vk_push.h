/* Push-constant blocks of the shaders in shaders/, mirrored field for field (docs/DESIGN.md
 * section 5.2).
 * The GLSL declaration is the original; each struct here names its shader, and the size and
 * offset asserts catch a field added on one side only. Scalars only (uint, float), so std430
 * push-constant layout and the C layout agree without padding. */
#ifndef SIZEUP_VK_PUSH_H
#define SIZEUP_VK_PUSH_H

#include <stddef.h>
#include <stdint.h>

/* shaders/selfcheck.comp: y[i] = a * x[i] + b for i < n. Bindings: 0 = x (n floats, read),
 * 1 = y (n floats, written). Specialization constant 0 = workgroup size. */
typedef struct vk_push_selfcheck {
    uint32_t n;
    float a;
    float b;
} vk_push_selfcheck;
_Static_assert(sizeof(vk_push_selfcheck) == 12, "matches Push in shaders/selfcheck.comp");
_Static_assert(offsetof(vk_push_selfcheck, a) == 4, "matches Push in shaders/selfcheck.comp");
_Static_assert(offsetof(vk_push_selfcheck, b) == 8, "matches Push in shaders/selfcheck.comp");

#define VK_SELFCHECK_WG 64 /* workgroup size the self-check specializes; any size works */

/* shaders/bw_read.glsl: XOR-reduce n_units words (16-byte words from a storage buffer in
 * bw_read, 4-byte texels in bw_read_tex); bindings 0 = source, 1 = one uint per invocation.
 * Specialization constants 0 = workgroup size, 1 = access pattern (0 contiguous ranges per
 * invocation, 1 interleaved). */
typedef struct vk_push_bw {
    uint32_t n_units;
    uint32_t n_inv;
} vk_push_bw;
_Static_assert(sizeof(vk_push_bw) == 8, "matches PushBw in shaders/bw_read.glsl");

#endif
