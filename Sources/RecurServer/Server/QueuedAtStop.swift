import NIOCore

/// What a graceful stop does with the request lines a connection has framed but not started
/// (a pipelining client may have queued up to --max-queued-bytes of them, more than a stop can
/// wait for): a stop drops them (not executed, no reply; the end of file after the last reply
/// tells the client which requests to send again); a restart holds them back and hands them
/// over, in front of the unframed input, to the next process, which serves them in order.
enum QueuedAtStop: Sendable {
    case drop
    case handOver
}

/// The lines one connection has not started at a graceful stop.
struct QueuedLines {
    /// Held back for the next process, in order.
    private(set) var held: [ByteBuffer] = []
    /// Dropped by a stop.
    var dropped = 0
    /// An over-long line came after held ones: it has no bytes to hand over, so the held lines
    /// were served and everything after them is served too.
    var servesAll = false

    /// Holds `line` back; false when lines are no longer held (`servesAll`).
    mutating func hold(_ line: ByteBuffer) -> Bool {
        guard !servesAll else { return false }
        held.append(line)
        return true
    }

    /// The held lines, in order, which are the caller's to serve now; holds no more.
    mutating func takeAll() -> [ByteBuffer] {
        defer { held = [] }
        return held
    }

    /// `input` with the held lines (each with its newline) in front, for the next process.
    func input(before input: UnframedInput) -> UnframedInput {
        guard !held.isEmpty else { return input }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(held.reduce(input.bytes.count) { $0 + $1.readableBytes + 1 })
        for line in held {
            bytes.append(contentsOf: line.readableBytesView)
            bytes.append(10)
        }
        bytes.append(contentsOf: input.bytes)
        return UnframedInput(bytes: bytes, discarding: input.discarding)
    }
}
