import Foundation
import RecurCore
import XCTest
import RecurTestSupport

/// `recurd --stdin` with text the model cannot tokenize: exactly the pieces the vocabulary
/// lacks are left out and reported with their line, whatever the pipe's chunking, and the
/// summary counts them; every other piece is absorbed as `recur eval` would cut it.
final class StdinSkippingTests: XCTestCase {
    private let model = Repository.shakespeareModel
    /// Characters the Shakespeare model lacks, of 1, 2, 3 and 4 UTF-8 bytes.
    private let unknown: Set<Character> = ["5", "é", "€", "😀"]

    /// Lines of the summary and skip reports on stderr (not the startup log line).
    private func reports(_ stderr: String) -> [String] {
        stderr.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("recurd: info:") }
    }

    private func events(_ result: ProcessResult) throws -> [[String: Any]] {
        try result.lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    func testStdin_charModelFedOneByteAtATime_skipsOnlyTheUnknownCharactersAndReportsTheirLines() throws {
        let directory = try makeWorkDirectory(self)
        let text = "To be5, or not€ to be:\nthat is 😀the question\né\nWhether 'tis nobler5\n"
        let kept = String(text.filter { !unknown.contains($0) })
        let reference = try recurEvalPerToken(model: model, text: kept, in: directory)
        let child = try ChildProcess(Executables.recurd, ["--model", model.path, "--stdin", "--log-level", "warning"],
                                     in: directory, keepStdinOpen: true)
        // One byte per write, each waited for: every byte boundary is a read boundary, so the
        // unknown characters (and the bytes of the multi-byte ones) arrive split every way.
        var done = 0
        for character in text {
            for byte in Array(character.utf8) { try child.writeStdin(Data([byte])) }
            done += 1
            try child.waitFor("\(done) characters absorbed or reported") {
                child.stdoutLinesSoFar.count + child.stderrText.components(separatedBy: "skipped character").count - 1 >= done
            }
        }
        child.closeStdin()
        let result = try child.wait()
        XCTAssertEqual(result.status, 0, result.stderr)
        assertEventsMatchEval(try events(result), reference, stream: "stdin")
        XCTAssertEqual(reports(result.stderr), [
            "recurd: line 1, stream 'stdin': skipped character U+0035 '5', which is not in the model's vocabulary",
            "recurd: line 1, stream 'stdin': skipped character U+20AC '€', which is not in the model's vocabulary",
            "recurd: line 2, stream 'stdin': skipped character U+1F600 '😀', which is not in the model's vocabulary",
            "recurd: line 3, stream 'stdin': skipped character U+00E9 'é', which is not in the model's vocabulary",
            "recurd: line 4, stream 'stdin': skipped character U+0035 '5', which is not in the model's vocabulary",
        ] + reports(result.stderr).suffix(2))
        XCTAssertTrue(reports(result.stderr).suffix(2).first?.hasPrefix("recurd: \(kept.count) tokens (\(kept.count - 1) scored) in 1 stream") ?? false,
                      result.stderr)
        XCTAssertEqual(reports(result.stderr).last, "recurd: skipped 5 characters that the model's vocabulary lacks")
    }

    func testStdin_inputWithAFewUnknownCharacters_losesOnlyThoseCharactersWhateverTheChunking() throws {
        let directory = try makeWorkDirectory(self)
        // A stdin read used to be dropped whole for one character the model lacks; these
        // 600 bytes come in one read or several, and only the three characters may be lost.
        var text = String(try String(contentsOf: Repository.hamlet, encoding: .utf8).prefix(600))
        text.insert("5", at: text.index(text.startIndex, offsetBy: 300))
        text.insert("€", at: text.index(text.startIndex, offsetBy: 100))
        text.insert("😀", at: text.index(text.startIndex, offsetBy: 500))
        let kept = String(text.filter { !unknown.contains($0) })
        XCTAssertEqual(kept.utf8.count, 600)

        let whole = try runRecurd(["--model", model.path, "--stdin", "--format", "tsv", "--top-k", "1"],
                                  in: directory, stdin: Data(text.utf8), timeout: 60)
        XCTAssertEqual(whole.status, 0, whole.stderr)
        XCTAssertEqual(whole.lines.count, kept.count, "every character but the three unknown ones is a token")
        let tokens = whole.lines.map { $0.split(separator: "\t", omittingEmptySubsequences: false)[1] }
        XCTAssertEqual(tokens.joined(), kept.replacingOccurrences(of: "\n", with: "\\n"))
        XCTAssertTrue(whole.stderr.contains("recurd: \(kept.count) tokens"), whole.stderr)
        XCTAssertTrue(whole.stderr.contains("recurd: skipped 3 characters that the model's vocabulary lacks"), whole.stderr)

        // The same input through random writes (the pipe coalesces them as it likes): the
        // same output, line for line.
        for seed: UInt64 in [1, 2, 3] {
            var generator = SeededGenerator(seed: seed)
            let bytes = Array(text.utf8)
            let child = try ChildProcess(Executables.recurd, ["--model", model.path, "--stdin", "--format", "tsv", "--top-k", "1"],
                                         in: directory, keepStdinOpen: true)
            var start = 0
            while start < bytes.count {
                let end = min(bytes.count, start + Int.random(in: 1...(seed == 1 ? 3 : 200), using: &generator))
                try child.writeStdin(Data(bytes[start..<end]))
                start = end
            }
            child.closeStdin()
            let result = try child.wait(timeout: 60)
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertEqual(result.stdout, whole.stdout, "seed \(seed): the output depends on nothing but the input")
            XCTAssertEqual(reports(result.stderr), reports(whole.stderr), "seed \(seed)")
        }
    }

    func testStdin_byteModelInRandomChunks_absorbsEveryByteAndSkipsNothing() throws {
        let directory = try makeWorkDirectory(self)
        var generator = SeededGenerator(seed: 9)
        let bytes: [UInt8] = (0..<1500).map { _ in UInt8.random(in: 0...255, using: &generator) } + Array("€😀é5\n".utf8)
        let child = try ChildProcess(Executables.recurd, ["--model", Repository.logsModel.path, "--stdin", "--format", "tsv",
                                                          "--log-level", "warning"], in: directory, keepStdinOpen: true)
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + Int.random(in: 1...700, using: &generator))
            try child.writeStdin(Data(bytes[start..<end]))
            start = end
        }
        child.closeStdin()
        let result = try child.wait(timeout: 60)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.lines.count, bytes.count)
        XCTAssertEqual(result.lines.map { Int($0.split(separator: "\t")[0]) }, Array(1...bytes.count))
        XCTAssertEqual(reports(result.stderr).count, 1, "only the summary: \(result.stderr)")
        XCTAssertTrue(result.stderr.contains("recurd: \(bytes.count) tokens"), result.stderr)
    }

    func testStdin_wordModelWithUnknownWords_skipsOnlyThoseWordsWhateverTheChunking() throws {
        let directory = try makeWorkDirectory(self)
        let corpus = "the cat sat on the mat . the dog sat on the log .\n"
        let vocabulary = try Vocabulary.build(kind: .word, corpus: corpus, unknownPolicy: .error)
        let config = ModelConfig(cell: .gru, vocabularySize: vocabulary.count, hiddenSize: 8, layers: 1, embeddingSize: 4)
        let modelFile = directory.appendingPathComponent("word.safetensors")
        try Model.random(config: config, vocabulary: vocabulary, seed: 4).write(to: modelFile.path)
        let text = "the cat sat on the zebra mat .\nthe dog, sat on the log .\nquokka\n"
        // The pieces as the tokenizer cuts them, <unk> marking what the vocabulary lacks.
        let lenient = try Vocabulary.build(kind: .word, corpus: corpus, unknownPolicy: .replace)
        let tokenizer = Tokenizer(lenient)
        let pieces = try tokenizer.encode(text).map { lenient.tokens[Int($0)] }
        let expected = pieces.filter { $0 != Vocabulary.unknownToken }.map { Vocabulary.escapedForDisplay($0) }
        XCTAssertEqual(pieces.count - expected.count, 3, "zebra, ',' and quokka")

        var outputs: Set<String> = []
        for seed: UInt64 in [1, 2, 3] {
            var generator = SeededGenerator(seed: seed)
            let bytes = Array(text.utf8)
            let child = try ChildProcess(Executables.recurd, ["--model", modelFile.path, "--stdin", "--format", "tsv",
                                                              "--log-level", "warning"], in: directory, keepStdinOpen: true)
            var start = 0
            while start < bytes.count {
                let end = min(bytes.count, start + Int.random(in: 1...(seed == 1 ? 1 : 6), using: &generator))
                try child.writeStdin(Data(bytes[start..<end]))
                start = end
            }
            child.closeStdin()
            let result = try child.wait()
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertEqual(result.lines.map { String($0.split(separator: "\t", omittingEmptySubsequences: false)[1]) }, expected,
                           "seed \(seed)")
            XCTAssertEqual(reports(result.stderr), [
                "recurd: line 1, stream 'stdin': skipped word 'zebra', which is not in the model's vocabulary",
                "recurd: line 2, stream 'stdin': skipped word ',', which is not in the model's vocabulary",
                "recurd: line 3, stream 'stdin': skipped word 'quokka', which is not in the model's vocabulary",
            ] + reports(result.stderr).suffix(2), "seed \(seed)")
            XCTAssertEqual(reports(result.stderr).last, "recurd: skipped 3 words that the model's vocabulary lacks")
            outputs.insert(result.stdout)
        }
        XCTAssertEqual(outputs.count, 1, "the same events whatever the chunking")
    }

    func testStdin_keyField_reportsTheLineAndStreamOfEachSkippedCharacter() throws {
        let directory = try makeWorkDirectory(self)
        let input = "a\tto be5\nb\tor €not\na\tthat\n"
        let result = try runRecurd(["--model", model.path, "--stdin", "--key-field", "--format", "tsv", "--log-level", "warning"],
                                   in: directory, stdin: Data(input.utf8))
        XCTAssertEqual(result.status, 0, result.stderr)
        let rows = result.lines.map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        XCTAssertEqual(rows.filter { $0[0] == "a" }.map { $0[2] }.joined(), "to be\\nthat\\n")
        XCTAssertEqual(rows.filter { $0[0] == "b" }.map { $0[2] }.joined(), "or not\\n")
        XCTAssertEqual(Array(reports(result.stderr).prefix(2)), [
            "recurd: line 1, stream 'a': skipped character U+0035 '5', which is not in the model's vocabulary",
            "recurd: line 2, stream 'b': skipped character U+20AC '€', which is not in the model's vocabulary",
        ])
        XCTAssertTrue(result.stderr.contains("recurd: 18 tokens (16 scored) in 2 streams"), result.stderr)
        XCTAssertTrue(result.stderr.contains("recurd: skipped 2 characters"), result.stderr)
    }

    func testStdin_keyFieldWithBadKeys_saysWhyInStdinTermsWithTheLineNumber() throws {
        let directory = try makeWorkDirectory(self)
        let longKey = String(repeating: "k", count: 300)
        let input = "ok\tto be\n~mine\tor not\n\tno key\n\(longKey)\tthat\nbad\u{1}key\tis\n"
        let result = try runRecurd(["--model", model.path, "--stdin", "--key-field", "--format", "tsv", "--log-level", "warning"],
                                   in: directory, stdin: Data(input.utf8))
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.lines.count, 6, "only the first line is absorbed")
        XCTAssertEqual(Array(reports(result.stderr).prefix(4)), [
            "recurd: skipped line 2: its key starts with '~', which is reserved for socket connections' private streams",
            "recurd: skipped line 3: its key is empty (the line starts with a tab)",
            "recurd: skipped line 4: its key is 300 bytes long; keys name streams, which are at most 256 bytes",
            "recurd: skipped line 5: its key contains the control character U+0001; keys are printable text",
        ])
        XCTAssertFalse(result.stderr.contains("omit"), "no socket wording: \(result.stderr)")
    }

    /// The socket's `feed` is a request: text the model cannot tokenize refuses it with an
    /// error naming the character, and the stream stays as it was (the client still has the
    /// text and decides what to resend); the stream then goes on from where it was.
    func testSocketFeed_untokenizableCharacter_refusesTheRequestAndLeavesTheStreamAsItWas() throws {
        let daemon = try Daemon.start(self)
        let client = try daemon.connect()
        let first = try client.request(["op": "feed", "stream": "s", "text": "to be"])
        XCTAssertEqual(first.events.count, 5)
        let refused = try client.request(["op": "feed", "stream": "s", "text": ", or5 not"])
        XCTAssertEqual(refused.events.count, 0, "no token of the refused request is absorbed")
        XCTAssertEqual(Protocol.errorCode(refused.reply), "bad_value")
        let message = (refused.reply["error"] as? [String: Any])?["message"] as? String ?? ""
        XCTAssertTrue(message.contains("U+0035 '5' at offset 9"), message)
        let info = try client.request(["op": "info", "stream": "s"])
        XCTAssertEqual(info.reply["offset"] as? Int, 5)
        let next = try client.request(["op": "feed", "stream": "s", "text": ", or not"])
        XCTAssertEqual(next.events.map { $0["offset"] as? Int }, Array(6...13))
        let reference = try recurEvalPerToken(model: model, text: "to be, or not", in: daemon.directory)
        assertEventsMatchEval(first.events + next.events, reference, stream: "s")
    }
}
