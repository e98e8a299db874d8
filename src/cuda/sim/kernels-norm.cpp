// kernels-norm.cpp - kernels-norm.cu built by the host C++ compiler for the CUDA simulator.
#include "../kernels-norm.cu"
