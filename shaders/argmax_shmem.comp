// Argmax reducing through shared memory only, for devices without subgroup arithmetic in
// compute shaders; body: argmax.glsl.
#version 450
#define RED_NO_SUBGROUP
#include "argmax.glsl"
