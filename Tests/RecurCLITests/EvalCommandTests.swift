import Foundation
import XCTest

final class EvalCommandTests: XCTestCase {
    private let text = "the lazy dog sat on the mat\nwhile the bird sings in the tree\n"

    private func writeText(_ dir: URL) throws -> String {
        try text.write(to: dir.appendingPathComponent("t.txt"), atomically: true, encoding: .utf8)
        return "t.txt"
    }

    func test_eval_json_isOneObjectMatchingTheTextSummary() throws {
        let fixture = try TrainedFixture.get()
        let file = try writeText(fixture.directory)
        let json = try Recur.run(["eval", "model.safetensors", file, "--json"], in: fixture.directory)
        XCTAssertEqual(json.status, 0, json.stderr)
        XCTAssertEqual(json.lines.count, 1, json.stdout)
        let summary = try jsonObject(json.stdout)
        XCTAssertEqual(Set(summary.keys), ["tokens", "loss_nats", "bits_per_token", "perplexity"])
        XCTAssertEqual(summary["tokens"] as? Int, text.unicodeScalars.count)
        let loss = try XCTUnwrap(summary["loss_nats"] as? Double)
        XCTAssertEqual(try XCTUnwrap(summary["bits_per_token"] as? Double), loss / log(2), accuracy: 1e-9)
        XCTAssertEqual(try XCTUnwrap(summary["perplexity"] as? Double), exp(loss), accuracy: 1e-9)

        let plain = try Recur.run(["eval", "model.safetensors", file], in: fixture.directory)
        XCTAssertEqual(plain.status, 0, plain.stderr)
        let lossLine = try XCTUnwrap(plain.lines.first { $0.hasPrefix("loss:") }, plain.stdout)
        let printed = try XCTUnwrap(Double(lossLine.split(separator: " ", omittingEmptySubsequences: true)[1]))
        XCTAssertEqual(printed, loss, accuracy: 1e-5)
        XCTAssertTrue(plain.stdout.contains("perplexity:"), plain.stdout)
        XCTAssertTrue(plain.stdout.contains("bits/token:"), plain.stdout)
    }

    func test_eval_perToken_countsTokensMinusOneFromOffsetTwoAndAveragesToMinusLoss() throws {
        let fixture = try TrainedFixture.get()
        let file = try writeText(fixture.directory)
        let result = try Recur.run(["eval", "model.safetensors", file, "--json", "--per-token"], in: fixture.directory)
        XCTAssertEqual(result.status, 0, result.stderr)
        let objects = try result.lines.map { try jsonObject($0) }
        let summary = try XCTUnwrap(objects.last)
        let perToken = objects.dropLast()
        let tokens = try XCTUnwrap(summary["tokens"] as? Int)
        XCTAssertEqual(perToken.count, tokens - 1)
        XCTAssertEqual(perToken.map { $0["offset"] as? Int }, (2...tokens).map { $0 })
        let scalars = Array(text.unicodeScalars)
        for (i, object) in perToken.enumerated() {
            XCTAssertEqual(object["token"] as? String, String(scalars[i + 1]), "offset \(i + 2)")
        }
        let logProbs = perToken.compactMap { $0["logprob"] as? Double }
        XCTAssertEqual(logProbs.count, tokens - 1)
        XCTAssertTrue(logProbs.allSatisfy { $0 <= 0 })
        let mean = logProbs.reduce(0, +) / Double(logProbs.count)
        XCTAssertEqual(mean, -(try XCTUnwrap(summary["loss_nats"] as? Double)), accuracy: 1e-6)

        let plain = try Recur.run(["eval", "model.safetensors", file, "--per-token"], in: fixture.directory)
        let rows = plain.lines.filter { $0.split(separator: "\t").count == 3 }
        XCTAssertEqual(rows.count, tokens - 1)
        XCTAssertTrue(rows.first?.hasPrefix("2\t") == true, plain.stdout)
    }

    func test_eval_stdinDash_scoresLikeTheFile() throws {
        let fixture = try TrainedFixture.get()
        let file = try writeText(fixture.directory)
        let fromFile = try Recur.run(["eval", "model.safetensors", file, "--json"], in: fixture.directory)
        let fromStdin = try Recur.run(["eval", "model.safetensors", "-", "--json"], in: fixture.directory,
                                      stdin: Data(text.utf8))
        XCTAssertEqual(fromStdin.status, 0, fromStdin.stderr)
        XCTAssertEqual(fromStdin.stdout, fromFile.stdout)
    }

    func test_eval_unknownCharacter_failsNamingCharacterAndOffset() throws {
        let fixture = try TrainedFixture.get()
        let result = try Recur.run(["eval", "model.safetensors", "-"], in: fixture.directory,
                                   stdin: Data("the Quick fox".utf8))
        assertCleanError(result, mentions: ["U+0051", "'Q'", "offset 4", "standard input"])
        XCTAssertEqual(result.stdout, "")
    }
}
