#version 450
// Matrix product with Q3_K weights: the work split is in mul_mat.glsl, the block layout in
// dequant.glsl.
#define TYPE_Q3_K
#include "mul_mat.glsl"
