#version 450
// mul_mat_q4_0 with W read through a uniform texel buffer (CPU devices; mul_mat.glsl says why).
#define W_TEXEL
#define TYPE_Q4_0
#include "mul_mat.glsl"
