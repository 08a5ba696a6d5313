#version 450
// mul_mat_f32 with W read through a uniform texel buffer (CPU devices; mul_mat.glsl says why).
#define W_TEXEL
#define TYPE_F32
#include "mul_mat.glsl"
