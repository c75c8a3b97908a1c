import Foundation
import RecurFuzzing
import XCTest

/// Every committed fuzz input (fuzz/corpus/<target>/) through its harness, without libFuzzer:
/// the inputs that once crashed stay fixed, and the harnesses' own checks run in every test run.
final class CorpusReplayTests: XCTestCase {
    static let corpus = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("fuzz/corpus")

    func inputs(_ target: String) throws -> [(String, Data)] {
        let directory = Self.corpus.appendingPathComponent(target)
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        return try names.map { ($0, try Data(contentsOf: directory.appendingPathComponent($0))) }
    }

    func test_protocolCorpus_framesAndParsesEveryInput() throws {
        let all = try inputs("protocol")
        XCTAssertGreaterThan(all.count, 10, "the protocol corpus is missing")
        var lines = 0
        for (_, data) in all { lines += data.withUnsafeBytes { ProtocolFuzzer.run($0) } }
        XCTAssertGreaterThan(lines, all.count / 2, "most seeds hold at least one request line")
    }

    func test_modelFileCorpus_loadsOrRejectsEveryInput_andTheSeedsLoad() throws {
        let all = try inputs("model-file")
        XCTAssertGreaterThan(all.count, 5, "the model-file corpus is missing")
        var loaded: [String] = []
        for (name, data) in all where data.withUnsafeBytes({ ModelFileFuzzer.run($0) }) { loaded.append(name) }
        for seed in all.map(\.0) where seed.hasSuffix(".safetensors") {
            XCTAssertTrue(loaded.contains(seed), "the seed model \(seed) did not load")
        }
    }

    func test_protocolHarness_framesLinesAsTheDaemonDoes() {
        // Limit 16 + 4·1 = 20 bytes, chunks of 1 + 3 = 4 bytes.
        let input: [UInt8] = [1, 3] + Array("{\"op\":\"stats\"}\n\n  \r\n{\"op\":\"list\",\"pad\":\"xxxxxxxx\"}\n{\"op\":\"model\"}".utf8)
        let frames = input.withUnsafeBytes { ProtocolFuzzer.run($0) }
        XCTAssertEqual(frames, 3, "two lines and one too_long; blank lines are skipped")
    }

    func test_protocolHarness_unterminatedLastLineOneByteOverTheLimit_isTooLong() {
        // Found by fuzz-protocol: at end of input, a last line of limit + 1 bytes without a
        // newline was handed on whole (the extra byte is room for a "\r" only before "\n").
        let input: [UInt8] = [0, 63] + Array(repeating: UInt8(ascii: "a"), count: 17)
        XCTAssertEqual(input.withUnsafeBytes { ProtocolFuzzer.run($0) }, 1)
        let exact: [UInt8] = [0, 63] + Array(repeating: UInt8(ascii: "a"), count: 16)
        XCTAssertEqual(exact.withUnsafeBytes { ProtocolFuzzer.run($0) }, 1)
    }
}
