// Argmax with subgroup reductions; the body is shaders/argmax.glsl.
#version 450
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "argmax.glsl"
