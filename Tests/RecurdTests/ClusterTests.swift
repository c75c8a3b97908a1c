import Foundation
import RecurCore
import RecurTestSupport
import XCTest

/// A cluster of real recurd nodes on a real, private PostgreSQL (docs/CLUSTER.md): clients on
/// any node see every stream exactly as offline; a node killed with SIGKILL mid-feed loses no
/// acknowledged token; a node stopped with SIGTERM hands its groups off before it exits; a
/// node added under load takes its share with no client error; a node cut off from PostgreSQL
/// stops serving before its leases could be taken; peers without the cluster's certificate are
/// refused.
final class ClusterTests: XCTestCase {
    private func texts(_ count: Int, length: Int) throws -> [String] {
        let hamlet = Array(try String(contentsOf: Repository.hamlet, encoding: .utf8).unicodeScalars.map(Character.init))
        return (0..<count).map { s in
            let start = (s * 53) % hamlet.count
            return String(String(repeating: String(hamlet[start...] + hamlet[..<start]), count: 4).prefix(length))
        }
    }

    /// Every stream of `streams` continues exactly as the offline model over its first
    /// `offsets[s]` characters (+1: the next one is fed through `daemon` and compared).
    private func assertContinueExactly(_ daemon: Daemon, names: [String], texts: [String], offsets: [Int],
                                       file: StaticString = #filePath, line: UInt = #line) throws {
        let model = try Model(contentsOf: Repository.shakespeareModel.path)
        let tokenizer = Tokenizer(model.vocabulary)
        let prefixes = try names.indices.map { s in try tokenizer.encode(String(Array(texts[s])[..<(offsets[s] + 1)])) }
        let reference = OfflineSteps(model: model, streams: prefixes)
        let client = try daemon.connect()
        var mismatched: [String] = []
        for s in names.indices {
            let (events, reply) = try client.request(["op": "feed", "stream": names[s], "text": String(Array(texts[s])[offsets[s]]), "k": 5])
            let next = (events.first?["next"] as? [[String: Any]]) ?? []
            guard events.count == 1, events[0]["offset"] as? Int == offsets[s] + 1,
                  Protocol.logprob(events[0]) == reference.logprob[s],
                  next.map({ $0["token"] as! String }) == reference.next[s].map({ model.vocabulary.tokens[Int($0.token)] })
            else {
                mismatched.append("\(names[s]) at offset \(offsets[s]): \(events) \(reply)")
                continue
            }
        }
        XCTAssertEqual(mismatched.count, 0, mismatched.prefix(3).joined(separator: "\n"), file: file, line: line)
    }

    func test_threeNodes_clientsOnEveryNode_everyStreamEqualsRecurEval() throws {
        let cluster = try TestCluster(self)
        for name in ["a", "b", "c"] { try cluster.start(name, extra: name == "a" ? ["--http", "127.0.0.1:0"] : []) }
        try cluster.waitBalanced(["a", "b", "c"])
        let names = (0..<18).map { "doc\($0)" }
        let texts = try texts(names.count, length: 90)
        XCTAssertEqual(Set(try names.map { try cluster.owner(of: $0) }), ["a", "b", "c"], "the streams spread over every node")
        // Three clients, one per node, each feeding six streams in random chunks, interleaved.
        let events = Locked<[String: [[String: Any]]]>([:])
        let failures = Locked<[String]>([])
        let group = DispatchGroup()
        for (n, node) in ["a", "b", "c"].enumerated() {
            group.enter()
            Thread {
                defer { group.leave() }
                do {
                    let client = try cluster.nodes[node]!.connect()
                    var rng = SeededGenerator(seed: UInt64(n + 1))
                    let mine = Array(stride(from: n, to: names.count, by: 3))
                    var chunks = mine.map { randomChunks(texts[$0], maxLength: 9, using: &rng) }
                    while chunks.contains(where: { !$0.isEmpty }) {
                        for i in chunks.indices where !chunks[i].isEmpty {
                            let (got, reply) = try client.request(["op": "feed", "stream": names[mine[i]], "text": chunks[i].removeFirst(), "k": 1])
                            if reply["error"] != nil { failures.withLock { $0.append("\(names[mine[i]]) via \(node): \(reply)") } }
                            events.withLock { $0[names[mine[i]], default: []] += got }
                        }
                    }
                } catch {
                    failures.withLock { $0.append("client on \(node): \(error)") }
                }
            }.start()
        }
        XCTAssertEqual(group.wait(timeout: .now() + 120), .success)
        XCTAssertEqual(failures.withLock { $0 }, [])
        let all = events.withLock { $0 }
        for (s, name) in names.enumerated() {
            let reference = try recurEvalPerToken(model: Repository.shakespeareModel, text: texts[s], in: cluster.directory)
            assertEventsMatchEval(all[name] ?? [], reference, stream: name)
        }
        // Each node forwarded the requests for the others' streams, and says so in stats.
        for node in ["a", "b", "c"] {
            let (_, stats) = try cluster.nodes[node]!.connect().request(["op": "stats"])
            XCTAssertEqual(stats["cluster_node"] as? String, node, "\(stats)")
            XCTAssertTrue([21, 22].contains(stats["key_groups"] as? Int ?? 0), "\(stats)")
            XCTAssertGreaterThan(stats["forwarded"] as? Int ?? 0, 0, "\(stats)")
        }
        // /metrics has the node's groups, forwards and hand-offs.
        let metrics = try httpGet(try cluster.nodes["a"]!.child.waitForHTTPAddress(), "/metrics").body
        func value(_ name: String) -> Double? {
            metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last!) }
        }
        XCTAssertTrue([21, 22].contains(value("recurd_cluster_key_groups") ?? 0), metrics)
        XCTAssertGreaterThan(value("recurd_forwarded_requests_total") ?? 0, 0, metrics)
        XCTAssertGreaterThanOrEqual(value("recurd_cluster_groups_handed_off_total") ?? 0, 42, "a held every group, then handed two thirds off")
        // docs/OBSERVABILITY.md lists exactly the cluster metrics a node serves.
        let doc = try String(contentsOf: Repository.root.appendingPathComponent("docs/OBSERVABILITY.md"), encoding: .utf8)
        let documented = Set(doc.split(separator: "\n").filter { $0.hasPrefix("| `recurd_cluster_") }
            .map { String($0.dropFirst(3).prefix(while: { $0 != "`" })) })
        let served = Set(metrics.split(separator: "\n").filter { $0.hasPrefix("# TYPE recurd_cluster_") }
            .map { String($0.split(separator: " ")[2]) })
        XCTAssertEqual(documented, served)
        XCTAssertEqual(documented.count, 4)
        // recur cluster status shows the three nodes and their groups, from PostgreSQL.
        let status = try ChildProcess(Executables.recur, ["cluster", "status", "--cluster", cluster.postgres.url],
                                      in: cluster.directory, stdin: Data()).wait(timeout: 30)
        XCTAssertEqual(status.status, 0, status.stderr)
        let rows = status.lines.filter { $0.hasPrefix("a ") || $0.hasPrefix("b ") || $0.hasPrefix("c ") }
        XCTAssertEqual(rows.count, 3, status.stdout)
        XCTAssertTrue(rows.allSatisfy { $0.contains(" live ") && ($0.contains(" 21 ") || $0.contains(" 22 ")) }, status.stdout)
        XCTAssertTrue(status.stdout.contains("64 key groups, \(names.count) streams stored"), status.stdout)
        XCTAssertTrue(status.stdout.contains("every group has a live lease"), status.stdout)
        let json = try ChildProcess(Executables.recur, ["cluster", "status", "--cluster", cluster.postgres.url, "--json"],
                                    in: cluster.directory, stdin: Data()).wait(timeout: 30)
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
        XCTAssertEqual((object["nodes"] as? [[String: Any]])?.compactMap { $0["groups"] as? Int }.reduce(0, +), 64, json.stdout)
    }

    /// Pipelined clients on every node; the node owning a third of the streams dies with
    /// SIGKILL mid-feed. Its leases expire, the survivors take its groups over and serve them
    /// from the shared log: no acknowledged token is lost and every stream continues exactly.
    func test_kill9_midFeed_survivorsTakeOver_noAcknowledgedTokenLost() throws {
        let cluster = try TestCluster(self)
        for name in ["a", "b", "c"] { try cluster.start(name) }
        try cluster.waitBalanced(["a", "b", "c"])
        let names = (0..<60).map { "s\($0)" }
        let texts = try texts(names.count, length: 400)
        let seen = SeenOffsets(count: names.count)
        let group = DispatchGroup()
        for (n, node) in ["a", "b", "c"].enumerated() {
            group.enter()
            Thread {
                defer { group.leave() }
                guard let client = try? cluster.nodes[node]!.connect() else { return }
                let mine = Array(stride(from: n, to: names.count, by: 3))
                var sent = [Int](repeating: 0, count: mine.count)
                while true {
                    do {
                        for (i, s) in mine.enumerated() {
                            let text = Array(texts[s])
                            guard sent[i] < text.count - 8 else { return }
                            try client.send(["op": "feed", "stream": names[s], "text": String(text[sent[i]..<(sent[i] + 4)]), "k": 1])
                            sent[i] += 4
                        }
                        var done = 0
                        while done < mine.count {
                            let message = try client.readObject(timeout: 30)
                            if let stream = message["stream"] as? String, let offset = message["offset"] as? Int, message["done"] == nil {
                                seen.saw(Int(stream.dropFirst())!, offset)
                            }
                            if message["done"] != nil { done += 1 }
                            if message["error"] != nil { return }  // the stream's state is uncertain: stop, as a client would
                        }
                    } catch {
                        return
                    }
                }
            }.start()
        }
        let deadline = Date().addingTimeInterval(60)
        while seen.minimum < 40 && Date() < deadline { usleep(20_000) }
        let victimStreams = try names.indices.filter { try cluster.owner(of: names[$0]) == "c" }
        XCTAssertGreaterThan(victimStreams.count, 5, "node c serves some streams")
        let killed = Date()
        cluster.nodes["c"]!.child.signal(SIGKILL)
        _ = try cluster.nodes["c"]!.child.wait(timeout: 20)
        // A client of the dead node reconnects to another and resumes by offset (info): every
        // stream of the dead node answers again once the survivors took its groups over.
        let probe = try cluster.nodes["a"]!.connect()
        for s in victimStreams {
            try eventually("\(names[s]) served again", timeout: .seconds(30), interval: .milliseconds(20), {
                try probe.request(["op": "info", "stream": names[s]], timeout: 30).reply["offset"] != nil
            }, until: { $0 })
        }
        let servedAgain = Date().timeIntervalSince(killed)
        XCTAssertEqual(group.wait(timeout: .now() + 120), .success, "clients stopped")
        let acknowledged = seen.all
        let client = try cluster.nodes["a"]!.connect()
        var offsets = [Int](repeating: 0, count: names.count)
        for s in names.indices {
            let (_, info) = try client.request(["op": "info", "stream": names[s]], timeout: 30)
            offsets[s] = info["offset"] as? Int ?? -1
            XCTAssertNotNil(info["offset"], "\(names[s]): \(info)")
        }
        try cluster.waitBalanced(["a", "b"])
        var lost = 0
        for s in names.indices where offsets[s] < acknowledged[s] { lost += acknowledged[s] - offsets[s] }
        XCTAssertEqual(lost, 0, "acknowledged tokens lost")
        try assertContinueExactly(cluster.nodes["b"]!, names: names, texts: texts, offsets: offsets)
        print(String(format: "cluster failover (kill -9 of 1 of 3 nodes, lease TTL %.0f s): %d streams (%d on the dead node), %d tokens acknowledged, 0 lost; every stream of the dead node served again %.2f s after the kill",
                     cluster.ttl, names.count, victimStreams.count, acknowledged.reduce(0, +), servedAgain))
    }

    /// SIGTERM: the node checkpoints its streams and clears its leases before it exits, so
    /// the others take its groups at once (not after the TTL) and continue every stream exactly.
    func test_sigterm_handsEveryGroupOff_beforeExit() throws {
        let cluster = try TestCluster(self)
        for name in ["a", "b", "c"] { try cluster.start(name) }
        try cluster.waitBalanced(["a", "b", "c"])
        let names = (0..<24).map { "t\($0)" }
        let texts = try texts(names.count, length: 60)
        let client = try cluster.nodes["c"]!.connect()
        for s in names.indices {
            let (_, reply) = try client.request(["op": "feed", "stream": names[s], "text": String(texts[s].prefix(40)), "k": 1])
            XCTAssertNil(reply["error"], "\(reply)")
        }
        client.close()
        let stopped = try cluster.nodes["c"]!.stop()
        XCTAssertEqual(stopped.status, 0, stopped.stderr)
        XCTAssertTrue(stopped.stderr.contains("handed off"), stopped.stderr)
        XCTAssertEqual(try cluster.leases()["c"], nil, "no lease is left to expire")
        let start = Date()
        try cluster.waitBalanced(["a", "b"], timeout: 10)
        XCTAssertLessThan(Date().timeIntervalSince(start), cluster.ttl, "taken over without waiting for expiry")
        try assertContinueExactly(cluster.nodes["a"]!, names: names, texts: texts, offsets: names.map { _ in 40 })
    }

    /// A third node joins while a client feeds through the first: groups move to it by
    /// hand-off and the client sees no error; every stream equals recur eval.
    func test_nodeAddedUnderLoad_rebalances_withNoClientError() throws {
        let cluster = try TestCluster(self)
        for name in ["a", "b"] { try cluster.start(name) }
        try cluster.waitBalanced(["a", "b"])
        let names = (0..<12).map { "j\($0)" }
        let texts = try texts(names.count, length: 150)
        let events = Locked<[String: [[String: Any]]]>([:])
        let failures = Locked<[String]>([])
        let fed = Counter()
        let done = DispatchSemaphore(value: 0)
        Thread {
            defer { done.signal() }
            do {
                let client = try cluster.nodes["a"]!.connect()
                for offset in stride(from: 0, to: 150, by: 5) {
                    for (s, name) in names.enumerated() {
                        let piece = String(Array(texts[s])[offset..<(offset + 5)])
                        let (got, reply) = try client.request(["op": "feed", "stream": name, "text": piece, "k": 1])
                        if reply["error"] != nil { failures.withLock { $0.append("\(name): \(reply)") } }
                        events.withLock { $0[name, default: []] += got }
                        fed.add()
                    }
                }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }.start()
        while fed.count < 40 { usleep(10_000) }
        try cluster.start("c")
        try cluster.waitBalanced(["a", "b", "c"])
        XCTAssertEqual(done.wait(timeout: .now() + 120), .success)
        XCTAssertEqual(failures.withLock { $0 }, [])
        XCTAssertTrue(try names.contains { try cluster.owner(of: $0) == "c" }, "the new node serves some of the streams")
        let all = events.withLock { $0 }
        for (s, name) in names.enumerated() {
            let reference = try recurEvalPerToken(model: Repository.shakespeareModel, text: texts[s], in: cluster.directory)
            assertEventsMatchEval(all[name] ?? [], reference, stream: name)
        }
    }

    /// Node a reaches PostgreSQL through a proxy the test freezes (SIGSTOP: its connections stay
    /// open and carry nothing, as in a partition that drops packets, so a's queries hang rather
    /// than fail). a stops serving its groups while its leases are still valid, so that no
    /// other node can have taken them yet.
    func test_partitionedNode_stopsServing_beforeItsLeaseCanBeTaken() throws {
        let cluster = try TestCluster(self)
        let proxySocket = cluster.path("proxy")
        try FileManager.default.createDirectory(atPath: proxySocket, withIntermediateDirectories: true)
        let pgSocket = cluster.postgres.directory.appendingPathComponent(".s.PGSQL.\(cluster.postgres.port)").path
        let proxy = try ProcessGroup("/usr/bin/socat", ["UNIX-LISTEN:\(proxySocket)/.s.PGSQL.\(cluster.postgres.port),fork",
                                                        "UNIX-CONNECT:\(pgSocket)"])
        addTeardownBlock { proxy.kill() }
        try eventually("the proxy listens", timeout: .seconds(5), { FileManager.default.fileExists(atPath: "\(proxySocket)/.s.PGSQL.\(cluster.postgres.port)") }, until: { $0 })
        let viaProxy = "postgres://recur@/recur?host=\(proxySocket)&port=\(cluster.postgres.port)"
        let a = try cluster.start("a", peer: false, url: viaProxy)
        try cluster.start("b", peer: false)
        try cluster.waitBalanced(["a", "b"])
        let stream = try (0..<200).map { "p\($0)" }.first { try cluster.owner(of: $0) == "a" }!
        let client = try a.connect()
        XCTAssertNil(try client.request(["op": "feed", "stream": stream, "text": "To be", "k": 1]).reply["error"])
        // Freeze the proxy and every connection it carries.
        proxy.signal(SIGSTOP)
        let cut = Date()
        var refusedAt: Date?
        while Date().timeIntervalSince(cut) < 3 * cluster.ttl {
            let (_, info) = try client.request(["op": "info", "stream": stream])
            if Protocol.errorCode(info) == "moved" {
                refusedAt = Date()
                let lease = try cluster.postgres.psql("SELECT node || ' ' || (expires > now()) FROM recur_lease WHERE grp = \(cluster.group(of: stream))")
                XCTAssertEqual(lease.trimmingCharacters(in: .whitespacesAndNewlines), "a true",
                               "a stopped serving while its lease was still its own and valid")
                break
            }
            XCTAssertNotNil(info["offset"], "\(info)")
            usleep(50_000)
        }
        XCTAssertNotNil(refusedAt, "the partitioned node stopped serving")
        // b takes the group over once the lease expired, and serves the stream from the log.
        try cluster.waitBalanced(["b"], timeout: 20)
        let (_, info) = try cluster.nodes["b"]!.connect().request(["op": "info", "stream": stream])
        XCTAssertEqual(info["offset"] as? Int, 5, "\(info)")
    }

    func test_peerWithoutTheClusterCertificate_isRefusedAndLogged() throws {
        let cluster = try TestCluster(self)
        let a = try cluster.start("a")
        let port = try eventually("the peer address logged", timeout: .seconds(10), {
            a.child.stderrText.split(separator: "\n").first { $0.contains("peer links listening on") }
                .flatMap { $0.split(separator: " ").first { $0.hasPrefix("127.0.0.1:") } }.map(String.init)
        }, until: { $0 != nil })!
        for certificate in [[], ["-cert", cluster.path("rogue.pem"), "-key", cluster.path("rogue.key")]] {
            _ = try ChildProcess(URL(fileURLWithPath: "/usr/bin/openssl"), ["s_client", "-connect", port, "-quiet"] + certificate,
                                 in: cluster.directory, stdin: Data(#"{"peer_hello":"x","uid":0,"acts_on_all":true,"exempt":true}"#.utf8 + [10])).wait(timeout: 20)
        }
        try a.child.waitFor("two refusals logged", timeout: 10) {
            a.child.stderrText.components(separatedBy: "refused a peer connection").count - 1 >= 2
        }
        let log = a.child.stderrText
        XCTAssertTrue(log.contains("PEER_DID_NOT_RETURN_A_CERTIFICATE") || log.contains("handshakeFailed"), log)
        XCTAssertFalse(log.contains("peer link from node x"), "no rogue peer was served")
    }

    /// A forwarded request runs as its client's uid: a stream created by one user through one
    /// node is refused to another user through any node, and served to its owner through any.
    func test_streamOwnership_holdsAcrossNodes() throws {
        guard getuid() == 0 else { throw XCTSkip("running clients as other uids needs root (this test runs as uid \(getuid()))") }
        let cluster = try TestCluster(self)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: cluster.directory.path)
        for name in ["a", "b"] {
            try cluster.start(name, extra: ["--socket-mode", "666"])
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: cluster.path(name))
        }
        try cluster.waitBalanced(["a", "b"])
        let stream = try (0..<200).map { "own\($0)" }.first { try cluster.owner(of: $0) == "b" }!
        func request(_ node: String, as uid: Int, _ object: [String: Any]) throws -> [String: Any] {
            let line = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
            let script = """
                import json, socket, sys
                s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode() + b"\\n")
                f = s.makefile("rb")
                while True:
                    m = json.loads(f.readline())
                    if "error" in m or "op" in m: print(json.dumps(m)); break
                """
            let result = try ChildProcess(URL(fileURLWithPath: "/usr/bin/setpriv"),
                                          ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", "/usr/bin/python3", "-c", script,
                                           cluster.nodes[node]!.socketPath, line],
                                          in: cluster.directory, stdin: Data()).wait(timeout: 30)
            guard result.status == 0 else { throw TestFailure("client as \(uid) failed: \(result.stderr)") }
            return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        }
        let created = try request("a", as: 65534, ["op": "feed", "stream": stream, "text": "To be"])
        XCTAssertEqual(created["done"] as? Bool, true, "\(created)")
        for node in ["a", "b"] {
            let refused = try request(node, as: 65533, ["op": "feed", "stream": stream, "text": "!"])
            XCTAssertEqual(Protocol.errorCode(refused), "permission_denied", "via \(node): \(refused)")
            let info = try request(node, as: 65534, ["op": "info", "stream": stream])
            XCTAssertEqual(info["owner"] as? Int, 65534, "via \(node): \(info)")
            XCTAssertEqual(info["offset"] as? Int, 5, "via \(node): \(info)")
        }
    }
}
