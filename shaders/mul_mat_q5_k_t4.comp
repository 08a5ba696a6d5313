#version 450
// mul_mat_q5_k reading W as 16-byte texels (CPU devices; mul_mat.glsl says why).
#define W_TEXEL4
#define TYPE_Q5_K
#include "mul_mat.glsl"
