// kernels-resample.cpp - kernels-resample.cu built by the host C++ compiler for the CUDA simulator.
#include "../kernels-resample.cu"
