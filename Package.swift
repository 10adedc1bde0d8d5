// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Sparrow",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "sparrow", targets: ["sparrow"]),
        .library(name: "SparrowEncoder", targets: ["SparrowEncoder"]),
        // For the fuzzers in Fuzz/ (a package of their own, so that this build never compiles them).
        .library(name: "SparrowWire", targets: ["SparrowWire"]),
        .library(name: "SparrowShard", targets: ["SparrowShard"]),
        .library(name: "SparrowCoordinator", targets: ["SparrowCoordinator"]),
        .library(name: "SparrowClient", targets: ["SparrowClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-openapi-generator", from: "1.14.3"),
        .package(url: "https://github.com/apple/swift-openapi-runtime", from: "1.13.4"),
        .package(url: "https://github.com/hummingbird-project/swift-openapi-hummingbird", from: "2.1.0"),
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
        .target(name: "SparrowBuilder", dependencies: ["SparrowCore", "SparrowEncoder", "SparrowIO", "SparrowStorage"]),
        .target(
            name: "SparrowSecurity",
            dependencies: [
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .target(
            name: "SparrowWire",
            dependencies: [
                "SparrowCore",
                "SparrowSecurity",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "SparrowEtcd",
            dependencies: [
                "SparrowSecurity",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "SparrowShard",
            dependencies: [
                "SparrowWire", "SparrowStorage", "SparrowCore", "SparrowIO",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .target(
            name: "SparrowCoordinator",
            dependencies: [
                "SparrowWire", "SparrowEncoder", "SparrowCore", "SparrowIO",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
                "SparrowSecurity", "SparrowEtcd",
            ],
            // The HTTP API's server is generated from openapi.yaml, which it also serves.
            plugins: [.plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator"), "EmbedOpenAPIDocument"]
        ),
        .executableTarget(name: "embed-text"),
        .plugin(name: "EmbedOpenAPIDocument", capability: .buildTool(), dependencies: ["embed-text"]),
        // What the CLI, the tests and the benchmarks share to talk to a cluster: ClusterClient,
        // the loading of a build (ctl load) and the local cluster launcher (local up).
        .target(
            name: "SparrowClient",
            dependencies: [
                "SparrowWire", "SparrowCore", "SparrowCoordinator", "SparrowBuilder", "SparrowSecurity", "SparrowStorage",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .executableTarget(
            name: "sparrow",
            dependencies: [
                "SparrowEncoder", "SparrowBuilder", "SparrowIO", "SparrowStorage", "SparrowWire", "SparrowShard",
                "SparrowCoordinator", "SparrowSecurity", "SparrowEtcd", "SparrowClient",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .testTarget(name: "SparrowCoreTests", dependencies: ["SparrowCore"]),
        .testTarget(name: "SparrowEncoderTests", dependencies: ["SparrowEncoder", "SparrowIO"]),
        .testTarget(name: "SparrowIOTests", dependencies: ["SparrowIO"]),
        .testTarget(name: "SparrowStorageTests", dependencies: ["SparrowStorage", "SparrowCore", "SparrowIO"]),
        .testTarget(name: "SparrowWireTests", dependencies: [
            "SparrowWire", "SparrowSecurity", .product(name: "NIOEmbedded", package: "swift-nio"),
        ]),
        .testTarget(name: "SparrowSecurityTests", dependencies: ["SparrowSecurity"]),
        .testTarget(name: "SparrowShardTests", dependencies: ["SparrowShard", "SparrowWire", "SparrowStorage"]),
        .testTarget(name: "SparrowCoordinatorTests", dependencies: [
            "SparrowCoordinator", "SparrowWire", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        .testTarget(name: "SparrowEtcdTests", dependencies: ["SparrowEtcd"]),
        .testTarget(name: "IntegrationTests", dependencies: [
            "SparrowStorage", "SparrowWire", "SparrowCore", "SparrowSecurity", "SparrowCoordinator", "SparrowEtcd", "SparrowClient", "sparrow",
            .product(name: "X509", package: "swift-certificates"), .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(name: "SparrowBuilderTests", dependencies: ["SparrowBuilder", "SparrowCore", "SparrowIO", "SparrowStorage"]),
    ]
)
