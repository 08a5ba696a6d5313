#version 450
// mul_mat_q5_1 with W read through a uniform texel buffer (CPU devices; mul_mat.glsl says why).
#define W_TEXEL
#define TYPE_Q5_1
#include "mul_mat.glsl"
