// Must NOT build: the tuning table sits above kernels (kernels take cuda/launch_config.h instead).
#include "slidesparse/tuning/tuning_lookup.h"
