import Logging
import XCTest
@testable import RecurSystemd

final class JournalTests: XCTestCase {
    func test_forMetadataKey_namespacesAndSanitises() {
        XCTAssertEqual(JournalFieldName.forMetadataKey("recurd.stream"), "RECUR_STREAM")
        XCTAssertEqual(JournalFieldName.forMetadataKey("recurd.connections.max"), "RECUR_CONNECTIONS_MAX")
        XCTAssertEqual(JournalFieldName.forMetadataKey("peer-id"), "RECUR_PEER_ID")
        XCTAssertEqual(JournalFieldName.forMetadataKey("_SYSTEMD_UNIT"), "RECUR__SYSTEMD_UNIT")
        XCTAssertEqual(JournalFieldName.forMetadataKey("é=x\n"), "RECUR____X_")
        XCTAssertEqual(JournalFieldName.forMetadataKey(String(repeating: "a", count: 100)).utf8.count, 64)
        for key in ["recurd.stream", "_x", "9lives", "", "é", "a=b", String(repeating: "z", count: 200)] {
            let name = JournalFieldName.forMetadataKey(key)
            XCTAssertTrue(JournalFieldName.isValid(name), "\(key) -> \(name)")
        }
    }

    func test_isValid_rejectsWhatJournaldRejects() {
        XCTAssertTrue(JournalFieldName.isValid("MESSAGE"))
        XCTAssertTrue(JournalFieldName.isValid("RECUR_STREAM_2"))
        for bad in ["", "_TRUSTED", "2X", "lower", "A-B", "A B", String(repeating: "A", count: 65)] {
            XCTAssertFalse(JournalFieldName.isValid(bad), bad)
        }
    }

    func test_logHandler_sendsPriorityCodeLocationIdentifierAndMetadataFields() {
        let captured = Captured()
        var logger = Logger(label: "test") { _ in
            JournalLogHandler(identifier: "recurd", level: .debug) { captured.add($0) }
        }
        logger[metadataKey: "recurd.connection"] = "7"
        logger.warning("stream expired", metadata: ["recurd.stream": "s1"]); let line = #line
        logger.trace("dropped below the level")
        let entries = captured.entries
        XCTAssertEqual(entries.count, 1)
        let fields = Dictionary(entries[0], uniquingKeysWith: { a, _ in a })
        XCTAssertEqual(fields["MESSAGE"], "stream expired")
        XCTAssertEqual(fields["PRIORITY"], "4")
        XCTAssertEqual(fields["SYSLOG_IDENTIFIER"], "recurd")
        XCTAssertEqual(fields["CODE_LINE"], "\(line)")
        XCTAssertTrue(fields["CODE_FILE"]?.hasSuffix("JournalTests.swift") == true, fields["CODE_FILE"] ?? "nil")
        XCTAssertEqual(fields["CODE_FUNC"], "test_logHandler_sendsPriorityCodeLocationIdentifierAndMetadataFields()")
        XCTAssertEqual(fields["RECUR_STREAM"], "s1")
        XCTAssertEqual(fields["RECUR_CONNECTION"], "7")
        for (name, _) in entries[0] { XCTAssertTrue(JournalFieldName.isValid(name), name) }
    }

    func test_priority_followsSyslogLevels() {
        XCTAssertEqual([Logger.Level.trace, .debug, .info, .notice, .warning, .error, .critical].map(JournalLogHandler.priority),
                       [7, 7, 6, 5, 4, 3, 2])
    }

    func test_standardErrorIsJournal_onlyWhenDeviceAndInodeMatch() {
        unsetenv("JOURNAL_STREAM")
        XCTAssertFalse(Journal.standardErrorIsJournal())
        var info = stat()
        XCTAssertEqual(fstat(STDERR_FILENO, &info), 0)
        setenv("JOURNAL_STREAM", "\(info.st_dev):\(info.st_ino)", 1)
        XCTAssertTrue(Journal.standardErrorIsJournal())
        setenv("JOURNAL_STREAM", "\(info.st_dev):\(info.st_ino + 1)", 1)
        XCTAssertFalse(Journal.standardErrorIsJournal())
        setenv("JOURNAL_STREAM", "garbage", 1)
        XCTAssertFalse(Journal.standardErrorIsJournal())
        unsetenv("JOURNAL_STREAM")
    }
}

private final class Captured: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [[(String, String)]] = []
    func add(_ fields: [(String, String)]) { lock.lock(); list.append(fields); lock.unlock() }
    var entries: [[(String, String)]] { lock.lock(); defer { lock.unlock() }; return list }
}
