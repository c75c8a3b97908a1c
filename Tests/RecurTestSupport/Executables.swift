import Foundation
import XCTest

/// The executables `swift test` built next to the test bundle (a test target that runs them
/// depends on their products, so they are always up to date).
public enum Executables {
    public static let recurd = find("recurd")
    public static let recur = find("recur")

    /// The built executable `name`, next to the test bundle; a fatal error when there is none
    /// (the test target does not depend on it).
    public static func find(_ name: String) -> URL {
        var candidates: [URL] = Bundle.allBundles.map(\.bundleURL).filter { $0.pathExtension == "xctest" }
            .map { $0.deletingLastPathComponent() }
        candidates.append(Bundle.main.bundleURL)
        candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        for directory in candidates {
            let url = directory.appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        fatalError("cannot find the built '\(name)' executable near \(candidates.map(\.path))")
    }
}

/// A fresh short-named temporary directory, removed at the end of the test. Short, because a
/// Unix socket path inside it must stay under 108 bytes.
public func makeWorkDirectory(_ test: XCTestCase) throws -> URL {
    let url = URL(fileURLWithPath: "/tmp/recurd-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}
