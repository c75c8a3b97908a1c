import Foundation
import RecurTestSupport
import XCTest

/// Every user mistake ends in one `recur: error:` line and a nonzero exit, never a crash.
final class ErrorMessageTests: XCTestCase {
    func test_missingFiles_nameTheFile() throws {
        let dir = try makeWorkDirectory(self)
        assertCleanError(try Recur.run(["train", "nope.txt", "--out", "m.safetensors"], in: dir),
                         mentions: ["nope.txt", "No such file"])
        assertCleanError(try Recur.run(["eval", "nope.safetensors", "x.txt"], in: dir), mentions: ["nope.safetensors"])
        assertCleanError(try Recur.run(["sample", "nope.safetensors"], in: dir), mentions: ["nope.safetensors"])
        assertCleanError(try Recur.run(["inspect", "nope.safetensors"], in: dir), mentions: ["nope.safetensors"])
        let fixture = try TrainedFixture.get()
        assertCleanError(try Recur.run(["eval", "model.safetensors", "missing.txt"], in: fixture.directory),
                         mentions: ["missing.txt"])
    }

    func test_corruptModels_areRefusedWithTheReason() throws {
        let dir = try makeWorkDirectory(self)
        let good = try Data(contentsOf: TrainedFixture.get().model)
        try good.prefix(good.count / 2).write(to: dir.appendingPathComponent("truncated.safetensors"))
        try Data("not a model at all".utf8).write(to: dir.appendingPathComponent("text.safetensors"))
        var flipped = good
        flipped[10] = UInt8(ascii: "#")  // inside the JSON header
        try flipped.write(to: dir.appendingPathComponent("flipped.safetensors"))
        for name in ["truncated.safetensors", "text.safetensors", "flipped.safetensors"] {
            for command in [["inspect", name], ["sample", name], ["eval", name, "-"]] {
                assertCleanError(try Recur.run(command, in: dir, stdin: Data("abc".utf8)),
                                 mentions: ["invalid model file '\(name)'"])
            }
        }
        for name in ["truncated.safetensors", "text.safetensors"] {
            assertCleanError(try Recur.run(["inspect", name], in: dir), mentions: ["not a", "safetensors model file"])
        }
        assertCleanError(try Recur.run(["train", "c.txt", "--out", "m.safetensors", "--resume", "text.safetensors"], in: dir),
                         mentions: ["c.txt"])  // the corpus is read first
    }

    /// Whatever is given as the model, a file that is not a safetensors file at all says so,
    /// in every command, instead of reading its first bytes as a header length.
    func test_filesThatAreNotModels_sayTheyAreNotSafetensorsModelFiles() throws {
        let dir = try makeWorkDirectory(self)
        let good = try Data(contentsOf: TrainedFixture.get().model)
        let files: [(String, Data, String)] = [
            ("hamlet.txt", Data("First Citizen:\nBefore we proceed any further, hear me speak.\n".utf8), "it begins with text, 'First Citizen:\\nB'"),
            ("empty.safetensors", Data(), "it is empty"),
            ("tiny.safetensors", Data([1, 2, 3]), "only 3 bytes long"),
            ("binary.bin", Data((0..<64).map { UInt8(($0 * 37) % 256) }), "does not begin with a safetensors header"),
            ("header-cut.safetensors", good.prefix(100), "not a complete safetensors model file"),
            ("data-cut.safetensors", good.prefix(good.count - 10), "is it truncated?"),
        ]
        for (name, bytes, reason) in files {
            try bytes.write(to: dir.appendingPathComponent(name))
            for command in [["eval", name, "-"], ["inspect", name], ["sample", name]] {
                let result = try Recur.run(command, in: dir, stdin: Data("abc".utf8))
                assertCleanError(result, mentions: ["invalid model file '\(name)'", reason])
                XCTAssertFalse(result.stderr.contains("header length 7"), result.stderr)
            }
        }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("models"), withIntermediateDirectories: true)
        assertCleanError(try Recur.run(["eval", "models", "-"], in: dir, stdin: Data("abc".utf8)),
                         mentions: ["'models' is a directory, not a safetensors model file"])
    }

    func test_invalidOptions_explainTheRule() throws {
        let dir = try makeWorkDirectory(self)
        let train = ["train", "c.txt", "--out", "m.safetensors"]
        let cases: [([String], [String])] = [
            (train + ["--cell", "lstm", "--nonlinearity", "relu"], ["--nonlinearity", "rnn"]),
            (train + ["--lr", "0"], ["--lr"]),
            (train + ["--dropout", "1"], ["--dropout"]),
            (train + ["--val-fraction", "1.5"], ["--val-fraction"]),
            (train + ["--hidden", "0"], ["--hidden"]),
            (train + ["--cell", "transformer"], ["transformer"]),
            (train + ["--tokenizer", "byte", "--unknown", "replace"], ["--unknown"]),
            (train + ["--max-words", "10"], ["--max-words", "word"]),
            (["train", "c.txt"], ["--out"]),
            (["sample", "m.safetensors", "--temperature=-1"], ["--temperature"]),
            (["sample", "m.safetensors", "--top-k", "0"], ["--top-k"]),
            (["sample", "m.safetensors", "--prime", ""], ["--prime"]),
            (["frobnicate"], ["frobnicate"]),
        ]
        for (arguments, fragments) in cases {
            let result = try Recur.run(arguments, in: dir)
            assertCleanError(result, mentions: fragments)
        }
    }

    func test_resume_refusesAConflictingArchitectureAndCorpusItCannotEncode() throws {
        let dir = try makeWorkDirectory(self)
        try TrainedFixture.get().copy(to: dir)
        assertCleanError(try Recur.run(["train", "corpus.txt", "--out", "m2.safetensors", "--resume", "model.safetensors",
                                        "--hidden", "64"], in: dir),
                         mentions: ["--hidden 64", "32"])
        assertCleanError(try Recur.run(["train", "corpus.txt", "--out", "m2.safetensors", "--resume", "model.safetensors",
                                        "--batch", "4"], in: dir),
                         mentions: ["--batch 4"])
        try "Some Capitals here\n".write(to: dir.appendingPathComponent("caps.txt"), atomically: true, encoding: .utf8)
        assertCleanError(try Recur.run(["train", "caps.txt", "--out", "m2.safetensors", "--resume", "model.safetensors"], in: dir),
                         mentions: ["U+0053", "offset 0", "caps.txt", "vocabulary"])
    }

    func test_tooSmallCorpus_suggestsSmallerBatchOrSeq() throws {
        let dir = try makeWorkDirectory(self)
        try "tiny corpus\n".write(to: dir.appendingPathComponent("tiny.txt"), atomically: true, encoding: .utf8)
        assertCleanError(try Recur.run(["train", "tiny.txt", "--out", "m.safetensors", "--hidden", "8"], in: dir),
                         mentions: ["--batch", "--seq"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("m.safetensors").path))
    }
}
