import Foundation
import XCTest

/// A small deterministic corpus: lower-case words, spaces and newlines (no capitals, so
/// an upper-case letter is an unknown character for a char model trained on it).
func makeCorpus(sentences: Int = 2500, seed: UInt64 = 7) -> String {
    let words = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "and", "cat",
                 "sat", "on", "mat", "while", "bird", "sings", "in", "tree", "sun"]
    var state = seed
    func next() -> Int {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Int(state >> 33)
    }
    var lines: [String] = []
    for _ in 0..<sentences {
        lines.append((0..<(3 + next() % 6)).map { _ in words[next() % words.count] }.joined(separator: " "))
    }
    return lines.joined(separator: "\n") + "\n"
}

/// One tiny model trained once for all the tests that only read it: char LSTM, hidden 32,
/// no --epochs or --time-limit (so the default of one epoch applies).
struct TrainedFixture: Sendable {
    let directory: URL
    let corpus: URL
    let model: URL
    let trainResult: RecurResultSnapshot

    static let arguments = ["train", "corpus.txt", "--out", "model.safetensors", "--hidden", "32",
                            "--layers", "1", "--embedding", "16", "--seq", "20", "--batch", "8",
                            "--report-every", "0.1", "--eval-every", "0.5"]

    static let shared: Result<TrainedFixture, FixtureError> = {
        do {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("recur-cli-fixture-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            atexit {
                if case .success(let fixture) = TrainedFixture.shared {
                    try? FileManager.default.removeItem(at: fixture.directory)
                }
            }
            let corpus = directory.appendingPathComponent("corpus.txt")
            try makeCorpus().write(to: corpus, atomically: true, encoding: .utf8)
            let result = try Recur.run(arguments, in: directory)
            guard result.status == 0 else {
                return .failure(FixtureError(message: "training the fixture failed (\(result.status)): \(result.stderr)"))
            }
            return .success(TrainedFixture(directory: directory, corpus: corpus,
                                           model: directory.appendingPathComponent("model.safetensors"),
                                           trainResult: RecurResultSnapshot(result)))
        } catch {
            return .failure(FixtureError(message: "\(error)"))
        }
    }()

    /// The shared fixture, or a test failure explaining why it is missing.
    static func get() throws -> TrainedFixture {
        try shared.get()
    }

    /// Copies the fixture's files into `directory` (for tests that write next to the model).
    func copy(to directory: URL) throws {
        for name in ["corpus.txt", "model.safetensors", "model.safetensors.optim.safetensors",
                     "model.safetensors.metrics.jsonl"] {
            try FileManager.default.copyItem(at: self.directory.appendingPathComponent(name),
                                             to: directory.appendingPathComponent(name))
        }
    }
}

struct FixtureError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// A `RecurResult` that can live in a static (plain strings).
struct RecurResultSnapshot: Sendable {
    let status: Int32
    let stdout: String
    let stderr: String
    init(_ result: RecurResult) {
        status = result.status
        stdout = result.stdout
        stderr = result.stderr
    }
}

/// The JSON objects of a JSON Lines file.
func jsonLines(_ url: URL) throws -> [[String: Any]] {
    try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map { try jsonObject($0) }
}
