#version 450
// Matrix product with F32 weights: the work split is in mul_mat.glsl, the block layout in
// dequant.glsl.
#define TYPE_F32
#include "mul_mat.glsl"
