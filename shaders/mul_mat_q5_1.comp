#version 450
// Matrix product with Q5_1 weights: the work split is in mul_mat.glsl, the block layout in
// dequant.glsl.
#define TYPE_Q5_1
#include "mul_mat.glsl"
