import Foundation
import RecurCore
import XCTest

/// The word tokenizer's held-back run is bounded: a run longer than 1024 bytes is one overlong
/// piece (`<unk>`, or an error under the `error` policy), of which only the start is held, so
/// a stream saves and restores the same few bytes whatever the run's length (issue 9, defect 4).
final class WordRunBoundTests: XCTestCase {
    private let corpus = "hello world, hello   there\n"

    private func tokenizer(_ policy: UnknownPolicy = .replace) throws -> Tokenizer {
        Tokenizer(try Vocabulary.build(kind: .word, corpus: corpus, unknownPolicy: policy))
    }

    func test_encode_runLongerThanTheBound_isOneUnknownPiece() throws {
        let tokenizer = try tokenizer()
        let unk = try XCTUnwrap(tokenizer.vocabulary.tokens.firstIndex(of: Vocabulary.unknownToken))
        let hello = try tokenizer.encode("hello")
        for length in [1024, 1025, 70_000] {
            let ids = try tokenizer.encode("hello " + String(repeating: "a", count: length) + " hello")
            XCTAssertEqual(ids.count, 5, "length \(length)")
            XCTAssertEqual(ids[2], Int32(unk), "length \(length)")
            XCTAssertEqual(ids[4], hello[0])
        }
        let spaces = try tokenizer.encode("hello" + String(repeating: " ", count: 5000) + "hello")
        XCTAssertEqual(spaces, [hello[0], Int32(unk), hello[0]])
    }

    func test_encode_overlongRunUnderError_namesItsStartAndOffsetBriefly() throws {
        let tokenizer = try tokenizer(.error)
        XCTAssertThrowsError(try tokenizer.encode("hello " + String(repeating: "b", count: 100_000))) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("'bbbbbbbbbbbbbbbb'… at offset 2 is longer than 1024 bytes"), message)
            XCTAssertLessThan(message.utf8.count, 300, "the message quotes only the start")
        }
    }

    func test_incremental_anySplitOfLongRuns_matchesEncode_andHoldsAtMostTheBound() throws {
        let tokenizer = try tokenizer()
        let text = "hello " + String(repeating: "é", count: 700) + " " + String(repeating: "x", count: 3000) + "  world"
            + String(repeating: "\n", count: 2000) + "hello"
        let expected = try tokenizer.encode(text)
        var generator = SystemRandomNumberGenerator()
        let bytes = Array(text.utf8)
        for _ in 0..<20 {
            var encoder = IncrementalEncoder(tokenizer: tokenizer)
            var ids: [Int32] = []
            var position = 0
            while position < bytes.count {
                let end = min(bytes.count, position + Int.random(in: 1...700, using: &generator))
                ids += try encoder.feed(bytes[position..<end])
                XCTAssertLessThanOrEqual(encoder.pendingByteCount, IncrementalEncoder.maxPendingBytes)
                XCTAssertEqual(encoder.pendingBytes.count, encoder.pendingByteCount)
                // A restored copy continues exactly as the original.
                var restored = try IncrementalEncoder(tokenizer: tokenizer, pending: encoder.pendingBytes)
                let rest = Array(bytes[end...])
                var original = encoder
                XCTAssertEqual(try restored.feed(rest) + restored.finish(), try original.feed(rest) + original.finish())
                position = end
            }
            ids += try encoder.finish()
            XCTAssertEqual(ids, expected)
        }
    }

    /// A stream saved by an older recurd held the whole run: it restores as the overlong run.
    func test_restore_fromAnOversizedOldPendingRun_continuesAsTheOverlongRun() throws {
        let tokenizer = try tokenizer()
        var restored = try IncrementalEncoder(tokenizer: tokenizer, pending: Array(String(repeating: "a", count: 70_000).utf8))
        XCTAssertLessThanOrEqual(restored.pendingByteCount, IncrementalEncoder.maxPendingBytes)
        let ids = try restored.feed(Array("aa hello".utf8)) + restored.finish()
        XCTAssertEqual(ids, try tokenizer.encode(String(repeating: "a", count: 70_002) + " hello"))
    }

    func test_vocabulary_tokenLongerThanTheBound_isRefused_andBuildLeavesOverlongRunsOut() throws {
        let long = String(repeating: "z", count: 1025)
        let vocabulary = Vocabulary(kind: .word, tokens: [Vocabulary.unknownToken, long], unknownPolicy: .replace)
        XCTAssertThrowsError(try vocabulary.validate()) { XCTAssertTrue("\($0)".contains("1025 bytes long"), "\($0)") }
        let built = try Vocabulary.build(kind: .word, corpus: long + " " + long, unknownPolicy: .replace)
        XCTAssertEqual(built.tokens, [" ", Vocabulary.unknownToken])
    }

    /// The char tokenizer holds at most an unfinished UTF-8 sequence (3 bytes), whatever comes.
    func test_char_holdsAtMostThreeBytes_evenForEndlessInvalidOrPartialInput() throws {
        let tokenizer = Tokenizer(try Vocabulary.build(kind: .char, corpus: "ab漢", unknownPolicy: .replace))
        var encoder = IncrementalEncoder(tokenizer: tokenizer)
        for chunk: [UInt8] in [[0xE6], [0xBC], [0xE6, 0xBC], [0xF0, 0x9F, 0x98], [0xFF, 0xE6], Array(repeating: 0x80, count: 5000)] {
            _ = try encoder.feed(chunk)
            XCTAssertLessThanOrEqual(encoder.pendingByteCount, 3)
            _ = try IncrementalEncoder(tokenizer: tokenizer, pending: encoder.pendingBytes)
        }
    }

    /// Holding a long word costs time linear in its length: 16 MB in one feed takes about four
    /// times as long as 4 MB, not sixteen (issue 9 measured 1.1 s and 9.5 s before the bound).
    func test_feedOfAHugeWord_takesLinearTime() throws {
        let tokenizer = try tokenizer()
        func seconds(_ megabytes: Int) throws -> Double {
            let word = [UInt8](repeating: UInt8(ascii: "a"), count: megabytes << 20)
            var best = Double.infinity
            for _ in 0..<2 {
                var encoder = IncrementalEncoder(tokenizer: tokenizer)
                let start = Date()
                XCTAssertEqual(try encoder.feed(Array("hello ".utf8) + word), try tokenizer.encode("hello "))
                XCTAssertLessThanOrEqual(encoder.pendingByteCount, IncrementalEncoder.maxPendingBytes)
                best = min(best, Date().timeIntervalSince(start))
            }
            return best
        }
        let small = try seconds(4), large = try seconds(16)
        print(String(format: "a word in one feed: 4 MB %.3f s, 16 MB %.3f s (ratio %.1f)", small, large, large / small))
        XCTAssertLessThan(large / small, 8, "4 MB took \(small) s, 16 MB \(large) s")
    }
}
