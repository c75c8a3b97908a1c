import RecurCore
import XCTest

/// An encoder rebuilt from another's `pendingBytes` (a stream restored from the state store)
/// continues exactly as the original would, for char, word and byte tokenizers and any cut.
final class IncrementalEncoderRestoreTests: XCTestCase {
    private let corpus = "the cat sat on the mat, 漢字 and 😀 emoji. été   spaces\n"

    func test_restoredFromPendingBytes_continuesAsTheOriginal() throws {
        for kind in [TokenizerKind.char, .word, .byte] {
            let vocabulary = try Vocabulary.build(kind: kind, corpus: corpus, unknownPolicy: .replace)
            let tokenizer = Tokenizer(vocabulary)
            let bytes = Array(corpus.utf8)
            for cut in 0...bytes.count {
                var original = IncrementalEncoder(tokenizer: tokenizer)
                let before = try original.feed(bytes[..<cut])
                var restored = try IncrementalEncoder(tokenizer: tokenizer, pending: original.pendingBytes)
                XCTAssertEqual(restored.pendingByteCount, original.pendingByteCount, "\(kind) cut at \(cut)")
                let rest = Array(bytes[cut...])
                let expected = try original.feed(rest) + original.finish()
                let got = try restored.feed(rest) + restored.finish()
                XCTAssertEqual(got, expected, "\(kind) cut at \(cut)")
                XCTAssertEqual(before + got, try tokenizer.encode(corpus), "\(kind) cut at \(cut)")
            }
        }
    }

    func test_pendingBytesThatWouldMakeTokens_areRefused() throws {
        let tokenizer = Tokenizer(try Vocabulary.build(kind: .char, corpus: corpus, unknownPolicy: .replace))
        XCTAssertThrowsError(try IncrementalEncoder(tokenizer: tokenizer, pending: Array("ab".utf8)))
    }
}
