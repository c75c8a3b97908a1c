import Foundation
import RecurCore
import RecurTestSupport
import XCTest

/// A restart with another model (same vocabulary): streams are rebuilt by replaying their
/// logged tokens under the new model, or, when the log no longer reaches back to their start,
/// reset with a notice to the client that uses them. Never a state of one model continued by
/// another.
final class ModelChangeTests: XCTestCase {
    func testRestartWithAnotherModel_rebuildsShortStreams_andResetsLongOnesWithANotice() throws {
        let directory = try makeWorkDirectory(self)
        let original = try Model(contentsOf: Repository.shakespeareModel.path)
        var changed = original
        for i in stride(from: 0, to: changed.parameters.count, by: 7) { changed.parameters[i] *= 0.9 }
        let changedPath = directory.appendingPathComponent("changed.safetensors").path
        try changed.write(to: changedPath)
        let state = directory.appendingPathComponent("state").path
        let flags = ["--state-dir", state, "--replay-history", "40", "--checkpoint-interval", "16"]
        let text = Array(try String(contentsOf: Repository.hamlet, encoding: .utf8))
        let short = String(text[..<30]), long = String(text[..<120])

        let first = try Daemon.start(self, arguments: flags, in: directory)
        let client = try first.connect()
        _ = try client.request(["op": "feed", "stream": "short", "text": short])
        _ = try client.request(["op": "feed", "stream": "long", "text": long])
        try first.stop()

        let second = try Daemon.start(self, model: URL(fileURLWithPath: changedPath), arguments: flags, in: directory)
        let again = try second.connect()
        // Rebuilt: the next event is the new model's over the same 30 characters.
        let (events, _) = try again.request(["op": "feed", "stream": "short", "text": String(text[30]), "k": 5])
        let tokenizer = Tokenizer(changed.vocabulary)
        let reference = OfflineSteps(model: changed, streams: [try tokenizer.encode(String(text[...30]))])
        XCTAssertEqual(events.first?["offset"] as? Int, 31)
        XCTAssertEqual(events.first.flatMap(Protocol.logprob), reference.logprob[0])
        XCTAssertEqual((events.first?["next"] as? [[String: Any]])?.map { $0["token"] as! String },
                       reference.next[0].map { changed.vocabulary.tokens[Int($0.token)] })
        // Too long to replay (120 > 40 tokens of history): reset, and this client is told why.
        let (longEvents, _) = try again.request(["op": "feed", "stream": "long", "text": "x"])
        XCTAssertEqual(longEvents.first?["offset"] as? Int, 1)
        let notice = again.notices.first
        XCTAssertEqual(notice?["notice"] as? String, "reset", "\(again.notices)")
        XCTAssertEqual(notice?["stream"] as? String, "long")
        XCTAssertTrue((notice?["message"] as? String)?.contains("another model") == true, "\(String(describing: notice))")
        try second.stop()
    }
}
