import Foundation
import RecurCore
import XCTest

final class InspectCommandTests: XCTestCase {
    func test_inspect_showsArchitectureParameterCountTensorsAndProvenance() throws {
        let fixture = try TrainedFixture.get()
        let model = try Model(contentsOf: fixture.model.path)
        let expected = ParameterLayout.countParameters(model.config)

        let text = try Recur.run(["inspect", "model.safetensors"], in: fixture.directory)
        XCTAssertEqual(text.status, 0, text.stderr)
        let digits = Array(String(expected))
        let grouped = String(digits.enumerated().flatMap { i, d in
            i > 0 && (digits.count - i) % 3 == 0 ? [",", d] : [d]
        })
        XCTAssertTrue(text.stdout.contains("parameters: \(grouped)\n"), "parameter count \(grouped) not in:\n\(text.stdout)")
        for fragment in ["lstm", "hidden:     32", "embedding:  16", "char", "rnn.weight_hh_l0", "(128, 32)", "F32",
                         "provenance:", "corpus.txt"] {
            XCTAssertTrue(text.stdout.contains(fragment), "'\(fragment)' not in:\n\(text.stdout)")
        }

        let json = try jsonObject(Recur.run(["inspect", "model.safetensors", "--json"], in: fixture.directory).stdout)
        XCTAssertEqual(json["parameters"] as? Int, expected)
        XCTAssertEqual(json["vocab_size"] as? Int, model.vocabulary.count)
        XCTAssertEqual(json["unknown"] as? String, "error")
        XCTAssertEqual(json["file_bytes"] as? Int,
                       try FileManager.default.attributesOfItem(atPath: fixture.model.path)[.size] as? Int)
        let tensors = try XCTUnwrap(json["tensors"] as? [[String: Any]])
        XCTAssertEqual(tensors.map { $0["name"] as? String }, model.layout.slots.map(\.name))
        XCTAssertEqual(tensors.compactMap { $0["shape"] as? [Int] }, model.layout.slots.map(\.shape))
        let provenance = try XCTUnwrap(json["provenance"] as? [String: String])
        XCTAssertEqual(provenance, model.provenance)
    }
}
