// swift-tools-version: 6.0
import PackageDescription

// libFuzzer targets for Sparrow's parsers: a package of its own, so that the main package's
// build and tests never compile them. `ops/fuzz` builds them with
// `-Xswiftc -sanitize=fuzzer,address` and runs each for a bounded time on a copy of Corpus/.
// (Not named `Fuzz`: SwiftPM names a package by its directory, and a checkout named `fuzz`
// would then be the same package as this one.)
let libFuzzer: [LinkerSetting] = [.unsafeFlags(["-sanitize=fuzzer,address"])]

let package = Package(
    name: "SparrowFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "Sparrow", path: ".."),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // libFuzzer's driver, which the fuzzer runtime provides.
        .target(name: "CLibFuzzer"),
        .target(
            name: "FuzzSupport",
            dependencies: [
                "CLibFuzzer",
                .product(name: "SparrowWire", package: "Sparrow"),
                .product(name: "SparrowShard", package: "Sparrow"),
                .product(name: "SparrowCoordinator", package: "Sparrow"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // One executable per target: each keeps its own corpus, and a reproducer names its binary.
        // Each links libFuzzer's runtime (ops/fuzz instruments every module, but links it here only).
        .executableTarget(name: "fuzz-frames", dependencies: ["FuzzSupport"], linkerSettings: libFuzzer),
        .executableTarget(name: "fuzz-requests", dependencies: ["FuzzSupport"], linkerSettings: libFuzzer),
        .executableTarget(name: "fuzz-http", dependencies: ["FuzzSupport"], linkerSettings: libFuzzer),
    ]
)
