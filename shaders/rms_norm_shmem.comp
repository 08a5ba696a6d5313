// RMSNorm reducing through shared memory only, for devices without subgroup arithmetic in
// compute shaders (declaring the capability there would be invalid); body: rms_norm.glsl.
#version 450
#define RED_NO_SUBGROUP
#include "rms_norm.glsl"
