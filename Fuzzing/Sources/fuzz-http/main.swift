import FuzzSupport

// The entry point SwiftPM gives the executable (libFuzzer's own `main` gives way to it).
runLibFuzzer { data, size in
    fuzzSearchBody(fuzzInput(data, size))
    return 0
}
