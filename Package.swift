// swift-tools-version:6.0
import PackageDescription

// Layers, each pointing one way: RecurCore (numerics, no I/O) <- executables.
// The engine, server and systemd layers join in their own issues.
let package = Package(
    name: "Recur",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "RecurCore", targets: ["RecurCore"]),
        .executable(name: "recur", targets: ["recur"]),
        .executable(name: "recur-bench", targets: ["recur-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
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
        // Hand-written SIMD kernels (matrix-vector, activations) with run-time CPU dispatch.
        .target(
            name: "CRecurKernels",
            cSettings: [.unsafeFlags(["-O3", "-fno-math-errno"])]
        ),
        .target(
            name: "RecurCore",
            dependencies: ["CBLAS", "CDNNL", "CRecurKernels"],
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
        ),
        .executableTarget(
            name: "recur",
            dependencies: [
                "RecurCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "recur-bench",
            dependencies: [
                "RecurCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "RecurCoreTests",
            dependencies: ["RecurCore"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "RecurCLITests",
            dependencies: ["RecurCore", "recur"]
        ),
    ]
)
