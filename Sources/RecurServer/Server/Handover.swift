import CRecurHandover
import Foundation
import RecurCore
import RecurEngine

#if canImport(Glibc)
import Glibc
#endif

/// Keeps descriptors across a restart of the daemon: systemd's file descriptor store
/// (FDSTORE=1) in recurd. This layer knows only this protocol; without a store, a graceful
/// shutdown closes every connection as usual.
public protocol DescriptorStore: Sendable {
    /// Hands a copy of `descriptor` to the store under `name`; false when it could not.
    func store(_ descriptor: Int32, name: String) -> Bool
    /// Drops what is stored under `name` (FDSTOREREMOVE=1).
    func remove(name: String)
}

/// What the previous process handed over at its graceful stop, as passed to this one: every
/// passed descriptor named like a handover's (the state memfd `recurd-handover`, holding
/// `HandoverState` as JSON, and the connection sockets `recurd-conn-<id>`), in the order
/// passed. Nothing in it is trusted before `adopt` has checked it.
public struct Inheritance: Sendable {
    /// One passed descriptor and the name it was stored under.
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var descriptor: Int32

        /// Memberwise.
        public init(name: String, descriptor: Int32) {
            self.name = name
            self.descriptor = descriptor
        }
    }

    /// The descriptors, duplicates of a name included.
    public var entries: [Entry]

    /// Memberwise.
    public init(entries: [Entry]) {
        self.entries = entries
    }

    /// Whether `name` is one a handover stores (the state or a connection).
    public static func isHandoverName(_ name: String) -> Bool {
        name == HandoverState.stateName || name.hasPrefix(HandoverState.connectionPrefix)
    }
}

/// One connection as handed over: enough for the next process to serve it as if nothing
/// happened (same id, the same private stream, the same subscriptions, its unframed input).
struct HandedOverConnection: Codable, Sendable, Equatable {
    /// The connection id.
    var id: UInt64
    /// Its socket's name in the store.
    var name: String
    /// Its private stream, which it keeps in the next process (the only private stream that
    /// survives a restart). nil from a recurd that named them "~<id>".
    var privateStream: String?
    /// Bytes received after its last complete request line.
    var input: UnframedInput
    /// A request used the private stream (closing the connection must end it).
    var usedPrivateStream: Bool
    /// The streams it is subscribed to.
    var subscriptions: [String]

    /// The private stream the connection goes on with: the one recorded ("~<id>" from a
    /// recurd that named them so); nil when the record names something that is no private
    /// stream (the connection then gets a new one rather than someone's named stream).
    var privateStreamName: String? {
        guard let privateStream else { return StreamName.privatePrefix + String(id) }
        return StreamName.isPrivate(privateStream) && StreamName.problem(with: String(privateStream.dropFirst()), field: "") == nil
            ? privateStream : nil
    }
}

/// Everything the next process needs besides the sockets and the streams (which the state
/// store carries): the handed-over connections and the last connection id used.
struct HandoverState: Codable, Sendable, Equatable {
    /// Bumped when the format changes; a process refuses a state it does not know.
    var version = 1
    var lastID: UInt64
    var connections: [HandedOverConnection]

    /// The store names used for descriptors.
    static let stateName = "recurd-handover"
    static let listenName = "recurd-listen"
    static let connectionPrefix = "recurd-conn-"
    static func connectionName(_ id: UInt64) -> String { connectionPrefix + String(id) }

    /// Writes the state into a new memfd (sealed against change) and returns it.
    func writeMemfd() throws -> Int32 {
        let data = try JSONEncoder().encode(self)
        let fd = data.withUnsafeBytes { recur_memfd_with("recurd-handover", $0.baseAddress, $0.count) }
        guard fd >= 0 else { throw HandoverError("cannot write the handover state into a memfd: \(String(cString: strerror(errno)))") }
        return fd
    }

    /// Reads a state written by `writeMemfd` (the caller closes `fd`): a regular file (a memfd)
    /// of at most `maximumBytes`, valid UTF-8 JSON of this version, consistent (`validate()`).
    static func read(from fd: Int32) throws(HandoverError) -> HandoverState {
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw HandoverError("cannot inspect the handover state: \(String(cString: strerror(errno)))") }
        guard info.st_mode & S_IFMT == S_IFREG else { throw HandoverError("the handover state is not a memfd or a regular file") }
        guard info.st_size <= maximumBytes else {
            throw HandoverError("the handover state is \(info.st_size) bytes; at most \(maximumBytes) are read")
        }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress!, $0.count, off_t(data.count)) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw HandoverError("reading the handover state failed: \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            data.append(contentsOf: chunk[..<n])
            guard data.count <= maximumBytes else { throw HandoverError("the handover state is longer than \(maximumBytes) bytes") }
        }
        if let bad = data.withUnsafeBytes({ UTF8Validation.firstInvalidOffset($0) }) {
            throw HandoverError("the handover state is not valid UTF-8 (byte \(bad))")
        }
        let state: HandoverState
        do {
            state = try JSONDecoder().decode(HandoverState.self, from: Data(data))
        } catch {
            throw HandoverError("the handover state is not readable (\(error))")
        }
        try state.validate()
        return state
    }
}

/// A handover that could not be read or written, as a sentence.
struct HandoverError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Collects the connections handed over during a graceful stop.
final class HandoverCollector: Sendable {
    private let records = Locked<[HandedOverConnection]>([])

    func add(_ record: HandedOverConnection) { records.withLock { $0.append(record) } }
    var all: [HandedOverConnection] { records.withLock { $0 } }
}
