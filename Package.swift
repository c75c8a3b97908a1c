// swift-tools-version:6.0
import PackageDescription

// Layers, each pointing one way:
// RecurCore (numerics, no I/O) <- RecurEngine (streams, batching) <- RecurServer (protocol,
// sockets, stdin) <- executables (recur, recurd). RecurSystemd (libsystemd) stands apart; only
// recurd uses it, plugging into RecurServer through `DaemonObserver`.
let package = Package(
    name: "Recur",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "RecurCore", targets: ["RecurCore"]),
        .executable(name: "recur", targets: ["recur"]),
        .executable(name: "recurd", targets: ["recurd"]),
        .executable(name: "recur-bench", targets: ["recur-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.95.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.6.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
    ],
    targets: [
        // Debian's OpenBLAS (libopenblas-dev), pthread flavour.
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // Debian's oneDNN (libdnnl-dev): dnnl_sgemm, the fastest GEMM measured here.
        .systemLibrary(
            name: "CDNNL",
            providers: [.apt(["libdnnl-dev"])]
        ),
        // Debian's libpq (libpq-dev): `recur cluster status` reads the cluster's tables with it,
        // so that recur links no NIO.
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        // Hand-written SIMD kernels (matrix-vector, activations) with run-time CPU dispatch.
        .target(
            name: "CRecurKernels",
            cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"])]
        ),
        // SO_PEERCRED's struct ucred and group lookups, which need _GNU_SOURCE.
        .target(
            name: "CRecurPeer",
            cSettings: [.define("_GNU_SOURCE")]
        ),
        .target(
            name: "RecurCore",
            dependencies: ["CBLAS", "CDNNL", "CRecurKernels"],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
        ),
        // accept4 and memfd_create for handing connections over across a restart.
        .target(name: "CRecurHandover"),
        // The socket path's default and length limit, for the daemon and its clients alike.
        .target(name: "RecurSocketPath"),
        // Debian's libsystemd (libsystemd-dev): sd_notify, the fd store, socket activation, journal.
        .systemLibrary(
            name: "CSystemd",
            pkgConfig: "libsystemd",
            providers: [.apt(["libsystemd-dev"])]
        ),
        // recurd as a systemd service: notifications, passed descriptors, journal logging.
        .target(
            name: "RecurSystemd",
            dependencies: [
                "CSystemd",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "RecurEngine",
            dependencies: [
                "RecurCore",
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        // The state store (durable streams): token log, checkpoints, evicted streams, in SQLite.
        .target(
            name: "RecurStore",
            dependencies: [
                "RecurEngine",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        // The cluster (`recurd --cluster postgres://...`): the state store in PostgreSQL, key-group
        // leases fenced by epoch, and the mutual-TLS peer links that forward requests to owners.
        .target(
            name: "RecurCluster",
            dependencies: [
                "RecurEngine",
                "RecurStore",
                "RecurServer",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "RecurServer",
            dependencies: [
                "CRecurHandover",
                "RecurEngine",
                "RecurSocketPath",
                "CRecurPeer",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // recurd's HTTP surface (`--http`): GET /metrics in Prometheus text format, on Hummingbird.
        .target(
            name: "RecurHTTP",
            dependencies: [
                "RecurServer",
                "RecurSocketPath",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "recurd",
            dependencies: [
                "RecurServer",
                "RecurHTTP",
                "RecurSocketPath",
                "RecurStore",
                "RecurCluster",
                "RecurSystemd",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "recur",
            dependencies: [
                "RecurCore",
                "CLibPQ",
                "RecurSocketPath",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "recur-bench",
            dependencies: [
                "RecurCore",
                "RecurEngine",
                "RecurSocketPath",
                "RecurStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // What the test targets share: `eventually`, the seeded generator, the socket client and
        // the child-process runner. Foundation and XCTest only; no production target uses it.
        .target(
            name: "RecurTestSupport",
            path: "Tests/RecurTestSupport"
        ),
        .testTarget(
            name: "RecurSocketPathTests",
            dependencies: ["RecurSocketPath"]
        ),
        .testTarget(
            name: "RecurCoreTests",
            dependencies: ["RecurCore", "CRecurKernels", "RecurTestSupport"],
            resources: [.copy("Fixtures")]
        ),
        // The fuzz harnesses (docs/FUZZING.md): plain functions, replayed over the committed
        // corpus by RecurFuzzingTests; libFuzzer drives them through the fuzz-* executables.
        .target(
            name: "RecurFuzzing",
            dependencies: [
                "RecurCore",
                "RecurEngine",
                "RecurStore",
                "RecurServer",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "RecurFuzzingTests",
            dependencies: ["RecurFuzzing"]
        ),
        .testTarget(
            name: "CRecurPeerTests",
            dependencies: ["CRecurPeer"]
        ),
        .testTarget(
            name: "RecurEngineTests",
            dependencies: ["RecurEngine", "RecurTestSupport"]
        ),
        .testTarget(
            name: "RecurStoreTests",
            dependencies: ["RecurStore", "RecurEngine", "RecurCore", "RecurTestSupport", "RecurStoreTestSupport",
                           .product(name: "GRDB", package: "GRDB.swift")]
        ),
        // The stores' shared fixtures: tiny models and the offline reference.
        .target(
            name: "RecurStoreTestSupport",
            dependencies: ["RecurCore", "RecurEngine", "RecurStore"],
            path: "Tests/RecurStoreTestSupport"
        ),
        .testTarget(
            name: "RecurClusterTests",
            dependencies: ["RecurCluster", "RecurStore", "RecurEngine", "RecurCore", "RecurTestSupport", "RecurStoreTestSupport",
                           .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "RecurServerTests",
            dependencies: ["RecurServer", "RecurTestSupport", .product(name: "NIOPosix", package: "swift-nio")]
        ),
        .testTarget(
            name: "RecurSystemdTests",
            dependencies: ["RecurSystemd", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "RecurdTests",
            dependencies: ["RecurCore", "RecurTestSupport", "recurd", "recur"]
        ),
        .testTarget(
            name: "RecurCLITests",
            dependencies: ["RecurCore", "RecurTestSupport", "recur"]
        ),
    ]
)

// libFuzzer executables: their entry point is LLVMFuzzerTestOneInput and libFuzzer supplies
// main, so they link only with --sanitize=fuzzer. scripts/fuzz sets RECUR_FUZZ=1 to add them;
// ordinary builds and tests never see them.
if Context.environment["RECUR_FUZZ"] == "1" {
    for name in ["fuzz-protocol", "fuzz-model-file", "fuzz-store-record"] {
        package.targets.append(.executableTarget(name: name, dependencies: ["RecurFuzzing"]))
    }
}
