#ifndef SPARROW_CROCKSDB_SHIM_H
#define SPARROW_CROCKSDB_SHIM_H
// Debian's librocksdb-dev (7.8): the C API.
#include <rocksdb/c.h>
#endif
