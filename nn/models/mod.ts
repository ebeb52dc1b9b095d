/**
 * Backbones: CIFAR ResNet-32 and DenseNet-BC, torchvision-layout ResNet-50; PyTorch layouts and
 * state dicts.
 * @module
 */
export * from "./densenet.ts";
export * from "./heads_option.ts";
export * from "./resnet32.ts";
export * from "./resnet50.ts";
export * from "./torch_layout.ts";
export * from "./torch_state_dict.ts";
