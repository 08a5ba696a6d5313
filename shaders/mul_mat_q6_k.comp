#version 450
// Matrix product with Q6_K weights: the work split is in mul_mat.glsl, the block layout in
// dequant.glsl.
#define TYPE_Q6_K
#include "mul_mat.glsl"
