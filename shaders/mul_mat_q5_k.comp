#version 450
// Matrix product with Q5_K weights: the work split is in mul_mat.glsl, the block layout in
// dequant.glsl.
#define TYPE_Q5_K
#include "mul_mat.glsl"
