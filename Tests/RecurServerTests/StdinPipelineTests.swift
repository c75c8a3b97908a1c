import Logging
import NIOCore
import RecurCore
import RecurEngine
@testable import RecurServer
import XCTest

/// Stdin mode, driven in-process: chunks in (split anywhere, even inside a character), lines out.
final class StdinPipelineTests: XCTestCase {
    /// Hands out fixed chunks, then the end of input.
    final class ChunkSource: ByteChunkSource, @unchecked Sendable {
        private let chunks: Locked<[[UInt8]]>
        init(_ chunks: [[UInt8]]) { self.chunks = Locked(chunks) }
        func next() async throws -> [UInt8]? {
            chunks.withLock { $0.isEmpty ? nil : $0.removeFirst() }
        }
        func stop() { chunks.withLock { $0.removeAll() } }
    }

    /// Collects everything written.
    final class Collector: ByteSink, @unchecked Sendable {
        private let bytes = Locked<[UInt8]>([])
        func write(_ buffer: ByteBuffer) async throws {
            bytes.withLock { $0.append(contentsOf: buffer.readableBytesView) }
        }
        var lines: [String] {
            bytes.withLock { String(decoding: $0, as: UTF8.self) }.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        }
    }

    /// Splits `bytes` at random places (inside UTF-8 sequences too).
    private func randomChunks(_ bytes: [UInt8], seed: UInt64) -> [[UInt8]] {
        var rng = SeededGenerator(seed: seed)
        var chunks: [[UInt8]] = []
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + 1 + Int(rng.next() % 7))
            chunks.append(Array(bytes[start..<end]))
            start = end
        }
        return chunks
    }

    /// Runs a pipeline over `chunks` and returns (stdout lines, stderr lines).
    private func run(_ chunks: [[UInt8]], model: Model = TestModels.charLSTM,
                     configure: (inout RecurdConfiguration) -> Void) throws -> (out: [String], err: [String]) {
        var configuration = RecurdConfiguration()
        configuration.stdin = true
        configure(&configuration)
        let engine = StreamEngine(model: model, options: configuration.engine)
        let notices = NoticeRouter()
        notices.install(on: engine)
        engine.start()
        defer { engine.shutdown() }
        let out = Collector(), err = Collector()
        let pipeline = StdinPipeline(engine: engine, configuration: configuration, notices: notices,
                                     logger: ServerHarness.quietLogger, input: ChunkSource(chunks), output: out, diagnostics: err)
        try blocking { try await pipeline.run() }
        return (out.lines, err.lines)
    }

    func testJSONFormat_withChunksSplitInsideCharacters_printsTheEvaluatorsLogProbabilities() throws {
        let text = "Hello, wörld? no: Hello, world é€😀\nsecond line\n".replacingOccurrences(of: "ö", with: "o")
        let (out, err) = try run(randomChunks(Array(text.utf8), seed: 1)) { $0.format = .json }
        let reference = TestModels.reference(text, model: TestModels.charLSTM)
        XCTAssertEqual(out.count, reference.count)
        for (i, line) in out.enumerated() where i < reference.count {
            let event = try JSONValue.parse(Array(line.utf8))
            XCTAssertEqual(event["stream"], .string("stdin"))
            XCTAssertEqual(event["offset"]?.intValue, i + 1)
            XCTAssertEqual(event["logprob"]?.doubleValue.map(Float.init), reference[i].logprob, "offset \(i + 1)")
        }
        let scored = reference.compactMap(\.logprob)
        let loss = -scored.reduce(0.0) { $0 + Double($1) } / Double(scored.count)
        XCTAssertEqual(err.count, 1, "\(err)")
        XCTAssertTrue(err.last?.hasPrefix("recurd: \(reference.count) tokens (\(scored.count) scored) in 1 stream: loss \(PipelineSummary.fixed(loss, 6)) nats/token") ?? false,
                      err.last ?? "no summary")
        XCTAssertTrue(err.last?.contains("perplexity") ?? false)
    }

    func testTSVFormat_printsOffsetTokenLogprobAndTopK() throws {
        let text = "ab\tc"
        let (out, _) = try run([Array(text.utf8)]) { configuration in
            configuration.format = .tsv
            configuration.engine.defaultTopK = 2
        }
        let reference = TestModels.reference(text, model: TestModels.charLSTM)
        XCTAssertEqual(out.count, 4)
        let columns = out.map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        XCTAssertEqual(columns.map(\.count), [4, 4, 4, 4])
        XCTAssertEqual(columns.map { $0[0] }, ["1", "2", "3", "4"])
        XCTAssertEqual(columns.map { $0[1] }, ["a", "b", "\\t", "c"])
        XCTAssertEqual(columns[0][2], "-")
        for i in 1..<4 { XCTAssertEqual(Float(columns[i][2]), reference[i].logprob) }
        let candidates = columns[0][3].split(separator: ",")
        XCTAssertEqual(candidates.count, 2)
        XCTAssertTrue(candidates.allSatisfy { $0.split(separator: ":").last.map { $0.count == 6 && $0.hasPrefix("0.") } ?? false },
                      columns[0][3])
    }

    func testKeyField_feedsEachKeysLinesToItsOwnStreamAndReportsBadLines() throws {
        let input = "web1\tGET /index\nweb2\tPOST /login\nno tab here\nweb1\tGET /about\n"
            + "web3\t" + String(repeating: "x", count: 300) + "\nweb2\tdone"
        let (out, err) = try run(randomChunks(Array(input.utf8), seed: 3)) { configuration in
            configuration.keyField = true
            configuration.maxLineLength = 100
            configuration.format = .json
        }
        var byStream: [String: [JSONValue]] = [:]
        for line in out {
            let event = try JSONValue.parse(Array(line.utf8))
            byStream[event["stream"]!.stringValue!, default: []].append(event)
        }
        XCTAssertEqual(Set(byStream.keys), ["web1", "web2"])
        for (key, text) in [("web1", "GET /index\nGET /about\n"), ("web2", "POST /login\ndone")] {
            let reference = TestModels.reference(text, model: TestModels.charLSTM)
            let events = byStream[key] ?? []
            XCTAssertEqual(events.map { $0["offset"]?.intValue }, Array(1...reference.count), key)
            XCTAssertEqual(events.map { $0["logprob"]?.doubleValue.map(Float.init) }, reference.map(\.logprob), key)
        }
        XCTAssertTrue(err.contains { $0.contains("line 3") && $0.contains("no tab") }, "\(err)")
        XCTAssertTrue(err.contains { $0.contains("line 5") && $0.contains("longer than the limit of 100") }, "\(err)")
        XCTAssertTrue(err.last?.contains("in 2 streams") ?? false, "\(err)")
    }

    func testKeyFieldTSV_putsTheKeyFirst() throws {
        let (out, _) = try run([Array("k1\tab\n".utf8)]) { configuration in
            configuration.keyField = true
            configuration.format = .tsv
        }
        XCTAssertEqual(out.count, 3)
        XCTAssertTrue(out.allSatisfy { $0.hasPrefix("k1\t") }, "\(out)")
        XCTAssertTrue(out[2].hasPrefix("k1\t3\t\\n\t"), out[2])
    }

    func testUntokenizableText_isReportedAndSkippedWhileTheRestFlows() throws {
        let (out, err) = try run([Array("abc".utf8), Array("∑".utf8), Array("de".utf8)]) { $0.format = .json }
        XCTAssertEqual(out.count, 5)
        XCTAssertTrue(err.contains { $0.contains("U+2211") && $0.contains("skipped") }, "\(err)")
    }

    func testUntokenizableCharacters_areTheOnlyTextSkipped_forEverySplitOfTheInput() throws {
        // ñ (2 bytes), ∑ (3), 🙂 (4) and the U+FFFD of an invalid byte are not in the alphabet.
        let bytes = Array("ab ñc\nd∑e🙂".utf8) + [0xFF] + Array("f\n".utf8)
        let kept = "ab c\nd" + "ef\n"
        let reference = TestModels.reference(kept, model: TestModels.charLSTM)
        var splits: [[[UInt8]]] = [bytes.map { [$0] }]
        for cut in 1..<bytes.count { splits.append([Array(bytes[..<cut]), Array(bytes[cut...])]) }
        for chunks in splits {
            let (out, err) = try run(chunks) { $0.format = .tsv }
            XCTAssertEqual(out.map { Float($0.split(separator: "\t")[2]) }, reference.map(\.logprob), "chunks \(chunks)")
            XCTAssertEqual(err.filter { $0.contains("skipped character") }.count, 4, "\(chunks): \(err)")
            XCTAssertTrue(err.contains("recurd: skipped 4 characters that the model's vocabulary lacks"), "\(err)")
            XCTAssertTrue(err.contains { $0.hasPrefix("recurd: \(kept.count) tokens") }, "\(err)")
        }
    }

    func testByteModel_takesInvalidUTF8AsPlainBytes() throws {
        let (out, err) = try run([[0x61, 0xFF, 0xC3], [0xA9]], model: TestModels.byteGRU) { $0.format = .tsv }
        XCTAssertEqual(out.map { $0.split(separator: "\t")[1] }, ["a", "\\xFF", "\\xC3", "\\xA9"])
        XCTAssertTrue(err.last?.hasPrefix("recurd: 4 tokens (3 scored)") ?? false, "\(err)")
    }
}
