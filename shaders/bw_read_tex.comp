#version 450
// Device read bandwidth through a uniform texel buffer (bw_read.glsl).
#define BW_TEXEL
#include "bw_read.glsl"
