#version 450
// mul_mat_q4_k with W read through a uniform texel buffer (CPU devices; mul_mat.glsl says why).
#define W_TEXEL
#define TYPE_Q4_K
#include "mul_mat.glsl"
