// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Sparrow",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "sparrow", targets: ["sparrow"]),
        .library(name: "SparrowEncoder", targets: ["SparrowEncoder"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .systemLibrary(
            name: "CRocksDB",
            pkgConfig: "rocksdb",
            providers: [.apt(["librocksdb-dev"])]
        ),
        .target(name: "SparrowCore"),
        .target(name: "SparrowStorage", dependencies: ["SparrowCore", "SparrowIO", "CRocksDB"]),
        .target(name: "SparrowIO", dependencies: ["CZlib"]),
        .target(name: "SparrowEncoder", dependencies: ["SparrowCore", "CBLAS"]),
        .target(name: "SparrowBuilder", dependencies: ["SparrowCore", "SparrowEncoder", "SparrowIO"]),
        .executableTarget(
            name: "sparrow",
            dependencies: [
                "SparrowEncoder", "SparrowBuilder", "SparrowIO", "SparrowStorage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "SparrowCoreTests", dependencies: ["SparrowCore"]),
        .testTarget(name: "SparrowEncoderTests", dependencies: ["SparrowEncoder", "SparrowIO"]),
        .testTarget(name: "SparrowIOTests", dependencies: ["SparrowIO"]),
        .testTarget(name: "SparrowStorageTests", dependencies: ["SparrowStorage", "SparrowCore"]),
        .testTarget(name: "IntegrationTests", dependencies: ["SparrowStorage", "sparrow"]),
        .testTarget(name: "SparrowBuilderTests", dependencies: ["SparrowBuilder", "SparrowIO"]),
    ]
)
