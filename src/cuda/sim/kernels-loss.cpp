// kernels-loss.cpp - kernels-loss.cu built by the host C++ compiler for the CUDA simulator.
#include "../kernels-loss.cu"
