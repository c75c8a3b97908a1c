import Foundation
import XCTest

final class SampleCommandTests: XCTestCase {
    func test_sample_sameSeed_givesTheSameText() throws {
        let fixture = try TrainedFixture.get()
        let arguments = ["sample", "model.safetensors", "--length", "80", "--seed", "42", "--prime", "the "]
        let first = try Recur.run(arguments, in: fixture.directory)
        let second = try Recur.run(arguments, in: fixture.directory)
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertEqual(first.stdout, second.stdout)
        XCTAssertTrue(first.stdout.hasPrefix("the "), first.stdout)
        XCTAssertEqual(first.stdout.unicodeScalars.count, 4 + 80, "prime plus one scalar per generated char token")

        let other = try Recur.run(["sample", "model.safetensors", "--length", "80", "--seed", "43", "--prime", "the "],
                                  in: fixture.directory)
        XCTAssertNotEqual(other.stdout, first.stdout, "another seed should draw other text")
    }

    func test_sample_temperatureZero_isGreedyWhateverTheSeed() throws {
        let fixture = try TrainedFixture.get()
        let a = try Recur.run(["sample", "model.safetensors", "--length", "40", "--temperature", "0", "--seed", "1"], in: fixture.directory)
        let b = try Recur.run(["sample", "model.safetensors", "--length", "40", "--temperature", "0", "--seed", "2"], in: fixture.directory)
        XCTAssertEqual(a.status, 0, a.stderr)
        XCTAssertEqual(a.stdout, b.stdout)
        XCTAssertTrue(a.stdout.hasPrefix("\n"), "the default prime is a newline when the vocabulary has one")
    }

    func test_sample_topK_one_equalsGreedy() throws {
        let fixture = try TrainedFixture.get()
        let greedy = try Recur.run(["sample", "model.safetensors", "--length", "40", "--temperature", "0"], in: fixture.directory)
        let topOne = try Recur.run(["sample", "model.safetensors", "--length", "40", "--top-k", "1", "--seed", "9"], in: fixture.directory)
        XCTAssertEqual(topOne.status, 0, topOne.stderr)
        XCTAssertEqual(topOne.stdout, greedy.stdout)
    }
}
