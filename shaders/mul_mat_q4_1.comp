#version 450
// Matrix product with Q4_1 weights: the work split is in mul_mat.glsl, the block layout in
// dequant.glsl.
#define TYPE_Q4_1
#include "mul_mat.glsl"
