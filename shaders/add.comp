// Y += X elementwise over rows (engine/vk_ops.h), grid (n / WG, rows): the residual add.
// Spec constant 0 = workgroup size.
#version 450
#define PUSH_ADD
#include "ops.glsl"

layout(local_size_x_id = 0) in;

layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) buffer Y { float y[]; };

void main()
{
    uint r = gl_WorkGroupID.y, i = gl_GlobalInvocationID.x;
    if (i >= pc.n)
        return;
    y[pc.y_off + r * pc.y_stride + i] += x[pc.x_off + r * pc.x_stride + i];
}
