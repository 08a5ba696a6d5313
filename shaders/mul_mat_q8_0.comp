#version 450
// Matrix product with Q8_0 weights: the work split is in mul_mat.glsl, the block layout in
// dequant.glsl.
#define TYPE_Q8_0
#include "mul_mat.glsl"
