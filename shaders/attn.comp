// Causal attention with subgroup reductions; the body is shaders/attn.glsl.
#version 450
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "attn.glsl"
