import Logging
import RecurEngine

#if canImport(Glibc)
import Glibc
#endif

/// Checking what a previous process handed over before anything in it is used. The handover
/// comes through systemd's fd store, so only recurd itself writes it; it is still checked
/// whole, because a state this process did not expect (another version's, a corrupted or a
/// crafted one) must never crash the daemon or serve a socket under the wrong connection.
extension HandoverState {
    /// Largest state read: far above what 1 000 000 connections with a partial line each write.
    static let maximumBytes = 256 << 20
    /// Largest connection id accepted (and `lastID`): far beyond what a process hands out, and
    /// room to count on without overflow.
    static let maximumID: UInt64 = 1 << 53
    /// Most connections in one state (the largest --max-connections).
    static let maximumConnections = 1_000_000
    /// Longest unframed input of one connection (the largest --max-line, and its "\r").
    static let maximumInputBytes = (1 << 30) + 1
    /// Most subscriptions of one connection.
    static let maximumSubscriptions = 1_000_000

    /// Checks that the state is one a recurd could have written: ids unique, in 1...`lastID`,
    /// named as stored; inputs, counts and names within bounds; subscriptions sorted, unique
    /// and valid stream names (a private one only the connection's own).
    /// - Throws: `HandoverError` saying what is inconsistent.
    func validate() throws(HandoverError) {
        guard version == 1 else { throw HandoverError("the handover state has version \(version); this recurd reads version 1") }
        guard lastID <= Self.maximumID else { throw HandoverError("the last connection id \(lastID) is above \(Self.maximumID)") }
        guard connections.count <= Self.maximumConnections else {
            throw HandoverError("the handover state lists \(connections.count) connections; at most \(Self.maximumConnections) are read")
        }
        var seen = Set<UInt64>()
        var privateStreams = Set<String>()
        for connection in connections {
            let id = connection.id
            guard id >= 1, id <= lastID else {
                throw HandoverError("connection id \(id) is outside 1...\(lastID), the ids the previous process handed out")
            }
            guard seen.insert(id).inserted else { throw HandoverError("two connections have the id \(id)") }
            guard connection.name == Self.connectionName(id) else {
                throw HandoverError("connection \(id) is stored under the name '\(connection.name.escapingDisplayControls)', not '\(Self.connectionName(id))'")
            }
            guard connection.input.bytes.count <= Self.maximumInputBytes else {
                throw HandoverError("connection \(id) hands over \(connection.input.bytes.count) unframed bytes; at most \(Self.maximumInputBytes)")
            }
            if let own = connection.privateStreamName, !privateStreams.insert(own).inserted {
                throw HandoverError("two connections claim the private stream '\(own.escapingDisplayControls)'")
            }
            let subscriptions = connection.subscriptions
            guard subscriptions.count <= Self.maximumSubscriptions else {
                throw HandoverError("connection \(id) lists \(subscriptions.count) subscriptions; at most \(Self.maximumSubscriptions)")
            }
            for (i, name) in subscriptions.enumerated() {
                if i > 0, subscriptions[i - 1] >= name {
                    throw HandoverError("the subscriptions of connection \(id) are not sorted and unique (at '\(name.escapingDisplayControls)')")
                }
                try Self.checkSubscription(name, of: id, own: connection.privateStreamName)
            }
        }
    }

    /// A subscription's stream name: a valid name, or the connection's own private stream.
    private static func checkSubscription(_ name: String, of id: UInt64, own: String?) throws(HandoverError) {
        if name.hasPrefix(StreamName.privatePrefix) {
            guard name == own else {
                throw HandoverError("connection \(id) is subscribed to the private stream '\(name.escapingDisplayControls)' of another connection")
            }
            return
        }
        if let problem = StreamName.problem(with: name, field: "subscription") {
            throw HandoverError("connection \(id) has an unusable subscription: \(problem)")
        }
    }
}

extension Inheritance {
    /// What `adopt` takes over: the connections to serve, each with its socket, and the last
    /// id the previous process handed out (0 after a fresh start).
    struct Adopted {
        var lastID: UInt64 = 0
        var connections: [(HandedOverConnection, Int32)] = []
    }

    /// Takes over the handed-over connections. Everything is checked first: one state, valid
    /// (`HandoverState.read`), each socket named once, a connected Unix stream socket, and each
    /// socket with a record. Anything inconsistent is logged and the start is a fresh one:
    /// every handed-over descriptor is closed (its client sees end of file). A record whose
    /// socket is missing is a client that left during the restart. The store's entries are
    /// dropped as they are taken.
    func adopt(store: (any DescriptorStore)?, logger: Logger) -> Adopted {
        do {
            let adopted = try checked(logger: logger)
            // The state has been read; the adopted sockets are the server's now.
            for entry in entries where entry.name == HandoverState.stateName { close(entry.descriptor) }
            for (record, _) in adopted.connections { store?.remove(name: record.name) }
            store?.remove(name: HandoverState.stateName)
            logger.notice("took over \(adopted.connections.count) connections from the previous process",
                          metadata: ["recurd.handover.connections": "\(adopted.connections.count)"])
            return adopted
        } catch {
            logger.error("cannot take over the previous process's connections, starting afresh: \(error)",
                         metadata: ["recurd.handover.descriptors": "\(entries.count)"])
            for entry in entries {
                close(entry.descriptor)
                store?.remove(name: entry.name)
            }
            return Adopted()
        }
    }

    /// The connections, when everything handed over is consistent. Closes no descriptor:
    /// `adopt` closes each exactly once.
    private func checked(logger: Logger) throws(HandoverError) -> Adopted {
        let states = entries.filter { $0.name == HandoverState.stateName }
        guard states.count == 1 else {
            throw HandoverError(states.isEmpty ? "\(entries.count) connection sockets were handed over without a state"
                                               : "\(states.count) handover states were passed; one is written")
        }
        var sockets: [String: Int32] = [:]
        for entry in entries where entry.name != HandoverState.stateName {
            guard sockets.updateValue(entry.descriptor, forKey: entry.name) == nil else {
                throw HandoverError("two sockets were handed over as '\(entry.name.escapingDisplayControls)'")
            }
            if let problem = Self.socketProblem(entry.descriptor) {
                throw HandoverError("the descriptor handed over as '\(entry.name.escapingDisplayControls)' \(problem)")
            }
        }
        let state = try HandoverState.read(from: states[0].descriptor)
        var adopted = Adopted(lastID: state.lastID)
        for record in state.connections {
            guard let descriptor = sockets.removeValue(forKey: record.name) else {
                logger.warning("the handed-over connection \(record.id) has no socket in the store; its client had gone")
                continue
            }
            adopted.connections.append((record, descriptor))
        }
        if let stray = sockets.keys.sorted().first {
            // Its own descriptor is closed with the others by the fresh start.
            throw HandoverError("the socket '\(stray.escapingDisplayControls)' was handed over without a record in the state")
        }
        return adopted
    }

    /// Why `descriptor` cannot be a handed-over connection, or nil when it is a connected Unix
    /// stream socket.
    static func socketProblem(_ descriptor: Int32) -> String? {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return "is not open (\(String(cString: strerror(errno))))" }
        guard info.st_mode & S_IFMT == S_IFSOCK else { return "is not a socket" }
        #if os(Linux)
        guard option(SO_DOMAIN, of: descriptor) == AF_UNIX else { return "is not a Unix socket" }
        guard option(SO_TYPE, of: descriptor) == Int32(SOCK_STREAM.rawValue) else { return "is not a stream socket" }
        #endif
        guard option(SO_ACCEPTCONN, of: descriptor) == 0 else { return "is a listening socket, not a connection" }
        return nil
    }

    private static func option(_ name: Int32, of descriptor: Int32) -> Int32? {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, SOL_SOCKET, name, &value, &length) == 0 else { return nil }
        return value
    }
}
