// kernels-elementwise.cpp - kernels-elementwise.cu built by the host C++ compiler for the CUDA simulator.
#include "../kernels-elementwise.cu"
