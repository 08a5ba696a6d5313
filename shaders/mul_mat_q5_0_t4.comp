#version 450
// mul_mat_q5_0 on rows packed for 16-byte texel loads (CPU devices; mul_mat.glsl says why).
#define W_TEXEL4
#define TYPE_Q5_0
#include "mul_mat.glsl"
