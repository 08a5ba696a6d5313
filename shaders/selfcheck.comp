// Device self-check kernel: y[i] = a * x[i] + b for i < n.
//
// `sizeup devices --check` and tests/test_vk.c run it and compare with the same sum on the CPU.
// `precise` forbids fusing the multiply-add into an fma, so a correct device matches the CPU
// bit for bit rather than within an ulp. The push-constant block is mirrored in
// engine/vk_push.h (vk_push_selfcheck); keep the two in step.
#version 450

// Workgroup size is specialization constant 0 (docs/DESIGN.md section 5.2). glslang gives a
// local_size_x_id constant the default 1 whatever else is declared, so callers always set it
// (VK_SELFCHECK_WG in engine/vk_push.h).
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
    uint n;
    float a;
    float b;
} pc;

layout(std430, set = 0, binding = 0) readonly buffer X { float x[]; };
layout(std430, set = 0, binding = 1) writeonly buffer Y { float y[]; };

void main()
{
    uint i = gl_GlobalInvocationID.x;
    if (i >= pc.n)
        return;
    precise float t = pc.a * x[i] + pc.b;
    y[i] = t;
}
