#version 450
// Matrix product with F16 weights: the work split is in mul_mat.glsl, the block layout in
// dequant.glsl.
#define TYPE_F16
#include "mul_mat.glsl"
