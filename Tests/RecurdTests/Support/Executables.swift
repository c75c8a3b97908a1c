import Foundation
import XCTest

/// The executables `swift test` built next to the test bundle (the test target depends on the
/// `recurd` and `recur` products, so they are always up to date).
enum Executables {
    static let recurd = find("recurd")
    static let recur = find("recur")

    private static func find(_ name: String) -> URL {
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

/// The repository's committed files the tests read (models and texts in samples/).
enum Repository {
    static let root = URL(fileURLWithPath: #filePath)  // Tests/RecurdTests/Support/Executables.swift
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The committed character LSTM (65 symbols; an upper-case-and-punctuation text model).
    static let shakespeareModel = root.appendingPathComponent("samples/shakespeare-lstm.safetensors")
    /// The committed byte LSTM trained on synthetic service logs.
    static let logsModel = root.appendingPathComponent("samples/logs.safetensors")
    /// A few lines of Hamlet, all inside the Shakespeare model's vocabulary.
    static let hamlet = root.appendingPathComponent("samples/hamlet.txt")
}

/// A fresh short-named temporary directory, removed at the end of the test. Short, because a
/// Unix socket path inside it must stay under 108 bytes.
func makeWorkDirectory(_ test: XCTestCase) throws -> URL {
    let url = URL(fileURLWithPath: "/tmp/recurd-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}
