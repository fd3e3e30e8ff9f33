// Must NOT build: kernels is below layer, so the layer's public header is not visible here.
#include "slidesparse/layer/linear.h"
