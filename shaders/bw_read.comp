#version 450
// Device read bandwidth through a storage buffer (bw_read.glsl).
#include "bw_read.glsl"
