// Causal attention reducing through shared memory only, for devices without subgroup
// arithmetic in compute shaders; body: attn.glsl.
#version 450
#define RED_NO_SUBGROUP
#include "attn.glsl"
