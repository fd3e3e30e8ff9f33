// Control for the layering probes: a kernels source may include its own layer and those below it.
#include "cuda/launch_config.h"
#include "kernels/quant.h"
#include "slidesparse/core/quant.h"
#include "slidesparse/error.h"

int ss_layering_probe_control() { return slidesparse::KernelLaunchConfig{}.block_threads; }
