import Foundation
import RecurCore
import RecurTestSupport
import XCTest

final class TrainCommandTests: XCTestCase {
    /// README.md and `recur train --help` name the files training writes beside the model
    /// exactly as training names them.
    func test_readmeAndHelp_nameTheMetricsAndCheckpointFilesTrainingWrites() throws {
        let fixture = try TrainedFixture.get()
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
            .replacingOccurrences(of: "\n", with: " ")
        XCTAssertTrue(readme.contains("`recur train --out model.safetensors` writes `model.safetensors.metrics.jsonl`"), "README")
        XCTAssertTrue(readme.contains("`model.safetensors.optim.safetensors`"), "README")
        for name in ["model.safetensors.metrics.jsonl", "model.safetensors.optim.safetensors"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: fixture.directory.appendingPathComponent(name).path), name)
        }
        let help = try Recur.run(["train", "--help"], in: fixture.directory)
        let text = (help.stdout + help.stderr).replacingOccurrences(of: "\n", with: " ")
            .split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        XCTAssertTrue(text.contains("--out m.safetensors: m.safetensors.metrics.jsonl"), text)
        XCTAssertTrue(text.contains("not counted in --time-limit"), text)
    }

    func test_train_withoutHorizon_trainsOneEpochAndWritesModelMetricsAndCheckpoint() throws {
        let fixture = try TrainedFixture.get()
        for name in ["model.safetensors", "model.safetensors.optim.safetensors", "model.safetensors.metrics.jsonl"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: fixture.directory.appendingPathComponent(name).path), name)
        }
        let metrics = try jsonLines(fixture.directory.appendingPathComponent("model.safetensors.metrics.jsonl"))
        XCTAssertGreaterThanOrEqual(metrics.count, 2, "expected several reports at --report-every 0.1")
        for line in metrics {
            for key in ["elapsed_s", "tokens", "tokens_per_s", "train_loss", "epoch", "lr"] {
                XCTAssertNotNil(line[key], "metrics line lacks '\(key)': \(line)")
            }
        }
        let last = try XCTUnwrap(metrics.last)
        let epoch = try XCTUnwrap(last["epoch"] as? Double)
        XCTAssertGreaterThanOrEqual(epoch, 1, "the default horizon is one epoch")
        XCTAssertLessThan(epoch, 1.5, "the default horizon is one epoch")
        XCTAssertNotNil(last["val_loss"] as? Double, "the final report always validates")
        let tokens = metrics.compactMap { $0["tokens"] as? Int }
        XCTAssertEqual(tokens, tokens.sorted(), "tokens only grow")
        XCTAssertEqual(try XCTUnwrap(last["lr"] as? Double), 0.002, accuracy: 1e-9)
    }

    func test_train_summary_reportsValidationLossInNatsAndBits() throws {
        let fixture = try TrainedFixture.get()
        let stdout = fixture.trainResult.stdout
        XCTAssertTrue(stdout.contains("nats/token"), stdout)
        XCTAssertTrue(stdout.contains("bits/token"), stdout)
        XCTAssertTrue(stdout.contains("trained "), stdout)
        // Not a terminal: one plain progress line per report, no carriage returns.
        XCTAssertFalse(fixture.trainResult.stderr.contains("\r"))
        XCTAssertTrue(fixture.trainResult.stderr.contains("tok/s"), fixture.trainResult.stderr)
    }

    func test_train_provenance_recordsCommandCorpusSeedTokensAndLoss() throws {
        let fixture = try TrainedFixture.get()
        let model = try Model(contentsOf: fixture.model.path)
        let p = model.provenance
        XCTAssertTrue(p["command"]?.contains("train corpus.txt --out model.safetensors") == true, "\(p)")
        XCTAssertEqual(p["corpus"], "corpus.txt")
        XCTAssertEqual(p["corpus_bytes"], String(makeCorpus().utf8.count))
        XCTAssertEqual(p["seed"], "0")
        XCTAssertEqual(p["recur_version"], "0.1.0")
        XCTAssertNotNil(p["date"])
        XCTAssertGreaterThan(Int(p["tokens"] ?? "") ?? 0, 0)
        XCTAssertGreaterThan(Double(p["elapsed_s"] ?? "") ?? 0, 0)
        let metrics = try jsonLines(fixture.directory.appendingPathComponent("model.safetensors.metrics.jsonl"))
        let finalValidation = try XCTUnwrap(metrics.last?["val_loss"] as? Double)
        XCTAssertEqual(Double(p["val_loss"] ?? "") ?? .nan, finalValidation, accuracy: 1e-5)
        XCTAssertEqual(p["tokens"], String(try XCTUnwrap(metrics.last?["tokens"] as? Int)))
    }

    func test_train_byteTokenizerOneHotGRUInF16_inspectsAsAsked() throws {
        let dir = try makeWorkDirectory(self)
        try makeCorpus(sentences: 400).write(to: dir.appendingPathComponent("c.txt"), atomically: true, encoding: .utf8)
        let train = try Recur.run(["train", "c.txt", "--out", "b.safetensors", "--tokenizer", "byte", "--cell", "gru",
                                   "--embedding", "0", "--hidden", "16", "--layers", "1", "--seq", "16",
                                   "--batch", "4", "--epochs", "0.2", "--storage", "f16"], in: dir)
        XCTAssertEqual(train.status, 0, train.stderr)
        let inspect = try jsonObject(Recur.run(["inspect", "b.safetensors", "--json"], in: dir).stdout)
        XCTAssertEqual(inspect["tokenizer"] as? String, "byte")
        XCTAssertEqual(inspect["cell"] as? String, "gru")
        XCTAssertEqual(inspect["embedding"] as? Int, 0)
        XCTAssertEqual(inspect["storage"] as? String, "F16")
        XCTAssertNil(inspect["nonlinearity"], "only rnn models show a nonlinearity")
        // A half-precision model still resumes exactly: the checkpoint keeps F32 weights.
        let checkpoint = try TrainingCheckpoint(contentsOf: dir.appendingPathComponent("b.safetensors.optim.safetensors").path)
        XCTAssertNotNil(checkpoint.weights)
    }

    func test_train_finishedRun_continuesWithLargerEpochs() throws {
        let dir = try makeWorkDirectory(self)
        try TrainedFixture.get().copy(to: dir)
        let before = try TrainingCheckpoint(contentsOf: dir.appendingPathComponent("model.safetensors.optim.safetensors").path)
        let again = try Recur.run(TrainedFixture.arguments + ["--resume", "model.safetensors"], in: dir)
        assertCleanError(again, mentions: ["already reached its horizon", "--epochs"])

        let more = try Recur.run(TrainedFixture.arguments + ["--resume", "model.safetensors", "--epochs", "1.5"], in: dir)
        XCTAssertEqual(more.status, 0, more.stderr)
        let after = try TrainingCheckpoint(contentsOf: dir.appendingPathComponent("model.safetensors.optim.safetensors").path)
        XCTAssertGreaterThan(after.progress.tokens, before.progress.tokens)
        XCTAssertEqual(after.step - before.step, (after.progress.tokens - before.progress.tokens) / (20 * 8),
                       "one optimizer step per chunk of T×B tokens")
        XCTAssertGreaterThan(after.progress.elapsed, before.progress.elapsed)
        XCTAssertEqual(after.options.epochs, 1.5)
    }
}
