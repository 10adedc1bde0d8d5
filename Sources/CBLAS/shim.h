#ifndef SPARROW_CBLAS_SHIM_H
#define SPARROW_CBLAS_SHIM_H
// Debian's libopenblas-dev: cblas.h from the pthread flavour (pkg-config "openblas").
#include <cblas.h>
#endif
