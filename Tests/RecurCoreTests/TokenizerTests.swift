import RecurTestSupport
import XCTest
@testable import RecurCore

final class TokenizerTests: XCTestCase {
    /// The 65 distinct characters of tinyshakespeare, in Python's `sorted(set(text))` order.
    static let shakespeareAlphabet = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

    /// Text with ASCII, accents (precomposed and combining), astral emoji, CJK, canonical
    /// singletons (Å as U+00C5 and U+212B), tabs, CRLF and runs of spaces.
    static let mixedText = "Hello,  world!\tnaïve cafe\u{301} café 😀👍🏽 漢字 \u{212B}\u{00C5} x_1 2½\r\n\n   end."

    func expectTokenization(_ body: () throws(RecurError) -> Void, message expected: String,
                            file: StaticString = #filePath, line: UInt = #line) {
        do {
            try body()
            XCTFail("no error; expected \(expected)", file: file, line: line)
        } catch {
            XCTAssertEqual(error, .tokenization(expected), file: file, line: line)
        }
    }

    // MARK: Building

    func test_buildChar_sortsByCodePointLikePython() throws {
        var rng = TestRNG(state: 1)
        let alphabet = Array(Self.shakespeareAlphabet.unicodeScalars)
        var corpus = String.UnicodeScalarView()
        for _ in 0..<5000 { corpus.append(alphabet[rng.below(alphabet.count)]) }
        corpus.append(contentsOf: alphabet.reversed())  // every character at least once
        let vocabulary = try Vocabulary.build(kind: .char, corpus: String(corpus), unknownPolicy: nil)
        XCTAssertEqual(vocabulary.count, 65)
        XCTAssertEqual(vocabulary.tokens, Self.shakespeareAlphabet.unicodeScalars.map { String($0) })
        XCTAssertEqual(vocabulary.unknownPolicy, .error)
        XCTAssertNoThrow(try vocabulary.validate())
    }

    func test_buildChar_keepsCanonicallyEquivalentScalarsApart() throws {
        let vocabulary = try Vocabulary.build(kind: .char, corpus: "\u{212B}\u{00C5}e\u{301}😀z", unknownPolicy: nil)
        let values = vocabulary.tokens.map { $0.unicodeScalars.first!.value }
        XCTAssertEqual(values, [0x65, 0x7A, 0xC5, 0x301, 0x212B, 0x1F600])
    }

    func test_buildChar_withReplace_addsUnknownInScalarOrder() throws {
        let vocabulary = try Vocabulary.build(kind: .char, corpus: "a<=b;", unknownPolicy: .replace)
        XCTAssertEqual(vocabulary.tokens, [";", "<", "<unk>", "=", "a", "b"])
        XCTAssertNoThrow(try vocabulary.validate())
    }

    func test_buildByte_isAlways256DecimalTokens() throws {
        let vocabulary = try Vocabulary.build(kind: .byte, corpus: "", unknownPolicy: nil)
        XCTAssertEqual(vocabulary.tokens, (0..<256).map { String($0) })
        XCTAssertNoThrow(try vocabulary.validate())
    }

    func test_buildWord_keepsMostFrequentWithTiesInScalarOrder() throws {
        let corpus = "the cat  sat, the  cat."
        // Pieces: the ␠ cat ␠␠ sat , ␠ the ␠␠ cat . — four pieces occur twice.
        let top3 = try Vocabulary.build(kind: .word, corpus: corpus, unknownPolicy: nil, maxWords: 3)
        XCTAssertEqual(top3.tokens, [" ", "  ", "<unk>", "cat"])
        XCTAssertEqual(top3.unknownPolicy, .replace)
        let frequent = try Vocabulary.build(kind: .word, corpus: corpus, unknownPolicy: nil, minCount: 2)
        XCTAssertEqual(frequent.tokens, [" ", "  ", "<unk>", "cat", "the"])
        let all = try Vocabulary.build(kind: .word, corpus: corpus, unknownPolicy: nil)
        XCTAssertEqual(all.tokens, [" ", "  ", ",", ".", "<unk>", "cat", "sat", "the"])
        XCTAssertNoThrow(try all.validate())
    }

    func test_buildWord_splitsLettersDigitsUnderscoreSpaceAndSymbols() throws {
        let vocabulary = try Vocabulary.build(kind: .word, corpus: "x_1+ß2½\t\n漢字!!", unknownPolicy: nil)
        XCTAssertEqual(Set(vocabulary.tokens), ["x_1", "+", "ß2½", "\t\n", "漢字", "!", "<unk>"])
    }

    func test_build_rejectsEmptyCorpusAndBadLimits() {
        XCTAssertThrowsError(try Vocabulary.build(kind: .char, corpus: "", unknownPolicy: nil))
        XCTAssertThrowsError(try Vocabulary.build(kind: .word, corpus: "", unknownPolicy: nil))
        XCTAssertThrowsError(try Vocabulary.build(kind: .word, corpus: "a", unknownPolicy: nil, maxWords: 0))
        XCTAssertThrowsError(try Vocabulary.build(kind: .word, corpus: "a b", unknownPolicy: nil, minCount: 5))
    }

    func test_validate_rejectsUnsortedDuplicateAndMissingUnknown() {
        let unsorted = Vocabulary(kind: .char, tokens: ["b", "a"], unknownPolicy: .error)
        XCTAssertThrowsError(try unsorted.validate())
        let duplicate = Vocabulary(kind: .char, tokens: ["a", "a"], unknownPolicy: .error)
        XCTAssertEqual(duplicate.validationProblem, "token 'a' appears twice")
        let noUnknown = Vocabulary(kind: .word, tokens: ["a", "b"], unknownPolicy: .replace)
        XCTAssertThrowsError(try noUnknown.validate())
        let twoScalars = Vocabulary(kind: .char, tokens: ["ab"], unknownPolicy: .error)
        XCTAssertThrowsError(try twoScalars.validate())
        let twoWords = Vocabulary(kind: .word, tokens: ["<unk>", "a b"], unknownPolicy: .replace)
        XCTAssertThrowsError(try twoWords.validate())
        let badBytes = Vocabulary(kind: .byte, tokens: (0..<256).map { String($0 == 7 ? 8 : $0) }, unknownPolicy: .error)
        XCTAssertThrowsError(try badBytes.validate())
    }

    // MARK: Round trips

    func test_encodeDecode_roundTripsForEveryKind() throws {
        for kind in TokenizerKind.allCases {
            let vocabulary = try Vocabulary.build(kind: kind, corpus: Self.mixedText, unknownPolicy: .error)
            let tokenizer = Tokenizer(vocabulary)
            let ids = try tokenizer.encode(Self.mixedText)
            XCTAssertEqual(tokenizer.decode(ids), Self.mixedText, "\(kind)")
            XCTAssertTrue(ids.allSatisfy { $0 >= 0 && Int($0) < vocabulary.count }, "\(kind)")
            switch kind {
            case .char: XCTAssertEqual(ids.count, Self.mixedText.unicodeScalars.count)
            case .byte: XCTAssertEqual(ids, Self.mixedText.utf8.map { Int32($0) })
            case .word: XCTAssertLessThan(ids.count, Self.mixedText.unicodeScalars.count)
            }
        }
    }

    func test_encodeWord_producesExpectedPieces() throws {
        let vocabulary = try Vocabulary.build(kind: .word, corpus: "Hi, you  2 you!", unknownPolicy: nil)
        let ids = try vocabulary.encode("you, Hi  2!")
        XCTAssertEqual(ids.map { vocabulary.tokens[Int($0)] }, ["you", ",", " ", "Hi", "  ", "2", "!"])
    }

    func test_decodeBytes_replacesInvalidUTF8() throws {
        let vocabulary = try Vocabulary.build(kind: .byte, corpus: "", unknownPolicy: nil)
        XCTAssertEqual(vocabulary.decode([0x61, 0xC3, 0xA9, 0xFF, 0xE2, 0x82]), "aé\u{FFFD}\u{FFFD}")
    }

    func test_decode_outOfRangeIdsBecomeReplacementCharacters() throws {
        let vocabulary = try Vocabulary.build(kind: .char, corpus: "ab", unknownPolicy: nil)
        XCTAssertEqual(vocabulary.decode([0, -1, 1, 99]), "a\u{FFFD}b\u{FFFD}")
    }

    // MARK: Unknown policy

    func test_encodeChar_unknownUnderError_namesCharacterAndOffset() throws {
        let tokenizer = Tokenizer(try Vocabulary.build(kind: .char, corpus: "abc", unknownPolicy: .error))
        expectTokenization({ () throws(RecurError) in _ = try tokenizer.encode("abé") },
                           message: "character U+00E9 'é' at offset 2 is not in the model's vocabulary")
        expectTokenization({ () throws(RecurError) in _ = try tokenizer.encode("a\u{1}") },
                           message: "character U+0001 '\\u{1}' at offset 1 is not in the model's vocabulary")
        expectTokenization({ () throws(RecurError) in _ = try tokenizer.encode("ab😀") },
                           message: "character U+1F600 '😀' at offset 2 is not in the model's vocabulary")
    }

    func test_encodeChar_unknownUnderReplace_usesUnknownId() throws {
        let vocabulary = try Vocabulary.build(kind: .char, corpus: "abc", unknownPolicy: .replace)
        let unknown = Int32(vocabulary.tokens.firstIndex(of: "<unk>")!)
        let ids = try vocabulary.encode("aéc😀")
        XCTAssertEqual(ids, [vocabulary.tokens.firstIndex(of: "a")!, Int(unknown), vocabulary.tokens.firstIndex(of: "c")!, Int(unknown)].map { Int32($0) })
        XCTAssertEqual(vocabulary.decode(ids), "a<unk>c<unk>")
    }

    func test_encodeWord_unknownUnderErrorAndReplace() throws {
        let strict = Tokenizer(try Vocabulary.build(kind: .word, corpus: "the cat", unknownPolicy: .error))
        expectTokenization({ () throws(RecurError) in _ = try strict.encode("the dog") },
                           message: "word 'dog' at offset 2 is not in the model's vocabulary")
        let lenient = Tokenizer(try Vocabulary.build(kind: .word, corpus: "the cat", unknownPolicy: nil))
        XCTAssertEqual(lenient.decode(try lenient.encode("the dog sat")), "the <unk> <unk>")
    }

    // MARK: Display

    func test_display_escapesControlsAndShowsBytes() throws {
        let chars = try Vocabulary.build(kind: .char, corpus: "\n\t\u{7}a", unknownPolicy: nil)
        XCTAssertEqual((0..<4).map { chars.display(Int32($0)) }, ["\\u{7}", "\\t", "\\n", "a"])
        let bytes = try Vocabulary.build(kind: .byte, corpus: "", unknownPolicy: nil)
        XCTAssertEqual([65, 32, 10, 0, 200, 127].map { bytes.display(Int32($0)) },
                       ["A", " ", "\\x0A", "\\x00", "\\xC8", "\\x7F"])
        XCTAssertEqual(bytes.display(256), "<invalid id 256>")
        let words = try Vocabulary.build(kind: .word, corpus: "a \n\n b", unknownPolicy: nil)
        XCTAssertTrue(words.tokens.indices.map { words.display(Int32($0)) }.contains(" \\n\\n "))
    }

    // MARK: Incremental encoding

    /// Splits `bytes` at random points (chunks of 0...maxChunk bytes) and feeds them.
    private func encodeInRandomChunks(_ bytes: [UInt8], tokenizer: Tokenizer, rng: inout TestRNG,
                                      maxChunk: Int) throws(RecurError) -> [Int32] {
        var encoder = IncrementalEncoder(tokenizer: tokenizer)
        var ids: [Int32] = []
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + rng.below(maxChunk + 1))
            ids += try encoder.feed(bytes[start..<end])
            start = end
        }
        ids += try encoder.finish()
        return ids
    }

    func test_incrementalEncoder_matchesEncodeForRandomChunkings() throws {
        var rng = TestRNG(state: 42)
        let text = String(repeating: Self.mixedText, count: 3)
        let bytes = Array(text.utf8)
        for kind in TokenizerKind.allCases {
            for policy in UnknownPolicy.allCases {
                let vocabulary = try Vocabulary.build(kind: kind, corpus: text, unknownPolicy: policy)
                let tokenizer = Tokenizer(vocabulary)
                let expected = try tokenizer.encode(text)
                for trial in 0..<60 {
                    let maxChunk = [1, 2, 3, 5, 17, 200][trial % 6]
                    let ids = try encodeInRandomChunks(bytes, tokenizer: tokenizer, rng: &rng, maxChunk: maxChunk)
                    XCTAssertEqual(ids, expected, "\(kind) \(policy) trial \(trial)")
                }
            }
        }
    }

    func test_incrementalEncoder_replacesInvalidUTF8LikeStringDecoding() throws {
        var rng = TestRNG(state: 7)
        let bytes: [UInt8] = Array("ab é".utf8) + [0xFF, 0xE0, 0x80, 0xE2, 0x82, 0x20, 0xF0, 0x9F, 0x98] + Array(" x😀".utf8) + [0xC3]
        let text = String(decoding: bytes, as: UTF8.self)
        for kind in [TokenizerKind.char, .word] {
            let tokenizer = Tokenizer(try Vocabulary.build(kind: kind, corpus: "ab x", unknownPolicy: .replace))
            let expected = try tokenizer.encode(text)
            for trial in 0..<200 {
                let ids = try encodeInRandomChunks(bytes, tokenizer: tokenizer, rng: &rng, maxChunk: 1 + trial % 4)
                XCTAssertEqual(ids, expected, "\(kind) trial \(trial)")
            }
        }
    }

    func test_incrementalEncoder_reportsUnknownAtTheSameOffsetAsEncode() throws {
        let tokenizer = Tokenizer(try Vocabulary.build(kind: .word, corpus: "one two", unknownPolicy: .error))
        var encoder = IncrementalEncoder(tokenizer: tokenizer)
        XCTAssertEqual(try encoder.feed(Array("one tw".utf8)), [2, 0])  // " " <unk> one two
        XCTAssertEqual(try encoder.feed(Array("o ".utf8)), [3])
        expectTokenization({ () throws(RecurError) in _ = try encoder.feed(Array("thr".utf8)); _ = try encoder.finish() },
                           message: "word 'thr' at offset 4 is not in the model's vocabulary")
    }

    func test_incrementalEncoder_holdsBackAWordUntilItEnds() throws {
        let tokenizer = Tokenizer(try Vocabulary.build(kind: .word, corpus: "hello world", unknownPolicy: nil))
        var encoder = IncrementalEncoder(tokenizer: tokenizer)
        XCTAssertEqual(try encoder.feed(Array("hel".utf8)), [])
        XCTAssertEqual(try encoder.feed(Array("lo".utf8)), [])
        XCTAssertEqual(try encoder.feed(Array(" ".utf8)), [tokenizer.vocabulary.tokens.firstIndex(of: "hello").map(Int32.init)!])
        XCTAssertEqual(try encoder.finish(), [tokenizer.vocabulary.tokens.firstIndex(of: " ").map(Int32.init)!])
    }

    // MARK: Speed

    func test_buildAndEncode_oneMegabyte_forEveryKind() throws {
        var rng = TestRNG(state: 3)
        let alphabet = Array(Self.shakespeareAlphabet.unicodeScalars)
        var scalars = String.UnicodeScalarView()
        for _ in 0..<1_000_000 { scalars.append(alphabet[rng.below(alphabet.count)]) }
        let corpus = String(scalars)
        for kind in TokenizerKind.allCases {
            let start = ContinuousClock.now
            let tokenizer = Tokenizer(try Vocabulary.build(kind: kind, corpus: corpus, unknownPolicy: nil))
            let ids = try tokenizer.encode(corpus)
            let elapsed = ContinuousClock.now - start
            print("build + encode of 1 MB (\(kind)): \(ids.count) ids in \(elapsed)")
            XCTAssertFalse(ids.isEmpty)
        }
    }
}
