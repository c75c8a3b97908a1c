import RecurCore
import XCTest

/// `IncrementalEncoder.feed(_:skipping:)`: what the vocabulary lacks is left out and reported,
/// everything else comes out as `encode` cuts it, for any split of the input.
final class IncrementalEncoderSkippingTests: XCTestCase {
    private let corpus = "the cat sat on the mat. the dog sat on the log.\n"

    /// Ids of `text`'s pieces under a `.replace` twin of the vocabulary, `<unk>` dropped, mapped
    /// back to `vocabulary`'s ids: the reference for skipping.
    private func expectedIds(_ text: String, kind: TokenizerKind) throws -> (ids: [Int32], skipped: [String]) {
        let strict = try Vocabulary.build(kind: kind, corpus: corpus, unknownPolicy: .error)
        let lenient = try Vocabulary.build(kind: kind, corpus: corpus, unknownPolicy: .replace)
        let pieces = try Tokenizer(lenient).encode(text).map { lenient.tokens[Int($0)] }
        let known = pieces.filter { $0 != Vocabulary.unknownToken }
        let ids = known.map { Int32(strict.tokens.firstIndex(of: $0)!) }
        // The pieces `<unk>` stood for, cut from the text by a vocabulary that knows everything.
        let everything = try Vocabulary.build(kind: kind, corpus: corpus + text, unknownPolicy: .error)
        let all = try Tokenizer(everything).encode(text).map { everything.tokens[Int($0)] }
        return (ids, all.filter { !strict.tokens.contains($0) })
    }

    func test_feedSkipping_leavesOutExactlyTheUnknownPieces_forEveryCut() throws {
        let text = "the zebra sat, on the mat 😀.\nthe cät\n"
        for kind in [TokenizerKind.char, .word] {
            let tokenizer = Tokenizer(try Vocabulary.build(kind: kind, corpus: corpus, unknownPolicy: .error))
            let (expected, expectedSkipped) = try expectedIds(text, kind: kind)
            XCTAssertFalse(expectedSkipped.isEmpty)
            let bytes = Array(text.utf8)
            var cuts = (0...bytes.count).map { [$0] }
            cuts.append(Array(0...bytes.count))  // one byte at a time
            for cut in cuts {
                var encoder = IncrementalEncoder(tokenizer: tokenizer)
                var skipped: [UnknownPiece] = []
                var ids: [Int32] = []
                var start = 0
                for end in cut + [bytes.count] where end >= start {
                    ids += encoder.feed(bytes[start..<end], skipping: &skipped)
                    start = end
                }
                ids += encoder.finish(skipping: &skipped)
                XCTAssertEqual(ids, expected, "\(kind) cut at \(cut)")
                XCTAssertEqual(skipped.map(\.text), expectedSkipped, "\(kind) cut at \(cut)")
                XCTAssertTrue(skipped.allSatisfy { $0.kind == kind })
            }
        }
    }

    func test_unknownPiece_describesItLikeTheTokenizationError() throws {
        XCTAssertEqual(UnknownPiece(text: "€", kind: .char).description, "character U+20AC '€'")
        XCTAssertEqual(UnknownPiece(text: "😀", kind: .char).description, "character U+1F600 '😀'")
        XCTAssertEqual(UnknownPiece(text: "zebra", kind: .word).description, "word 'zebra'")
        let tokenizer = Tokenizer(try Vocabulary.build(kind: .char, corpus: corpus, unknownPolicy: .error))
        XCTAssertThrowsError(try tokenizer.encode("€")) { error in
            XCTAssertTrue("\(error)".contains(UnknownPiece(text: "€", kind: .char).description), "\(error)")
        }
    }
}
