#ifndef SPARROW_CZLIB_SHIM_H
#define SPARROW_CZLIB_SHIM_H
#include <zlib.h>
#endif
