#ifndef SPARROW_CLIBFUZZER_H
#define SPARROW_CLIBFUZZER_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver, in the runtime that `-sanitize=fuzzer` links: reads libFuzzer's flags
/// from `argv` and runs `callback` on every input it makes.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
