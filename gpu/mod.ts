/** The WebGPU runtime: device, tensors, kernels, autograd and step capture. @module */
export const VERSION = "0.1.0";
