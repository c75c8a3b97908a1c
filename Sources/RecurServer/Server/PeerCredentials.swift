import CRecurPeer
import NIOCore
import RecurEngine

/// The process at the other end of a Unix-socket connection, as the kernel recorded it when
/// the connection was made (SO_PEERCRED): it cannot be forged by the client.
struct PeerCredentials: Sendable, Equatable {
    var pid: Int32
    var uid: UInt32
    var gid: UInt32

    /// Why a connection's credentials could not be read.
    struct Unavailable: Error, CustomStringConvertible {
        var description: String
    }

    /// Reads the credentials of `channel`'s peer.
    /// - Throws: `Unavailable` when the channel is not a socket with SO_PEERCRED (not Linux, or
    ///   not a Unix socket).
    static func of(_ channel: any Channel) async throws -> PeerCredentials {
        guard recur_so_peercred() != 0 else {
            throw Unavailable(description: "this system has no SO_PEERCRED")
        }
        guard let provider = channel as? any SocketOptionProvider else {
            throw Unavailable(description: "the connection is not a socket")
        }
        let cred: recur_ucred = try await read(from: provider).get()
        return PeerCredentials(pid: cred.pid, uid: cred.uid, gid: cred.gid)
    }

    /// Not inlinable and not public, as NIO requires for getsockopt of a C type.
    private static func read(from provider: any SocketOptionProvider) -> EventLoopFuture<recur_ucred> {
        provider.unsafeGetSocketOption(level: SocketOptionLevel(recur_sol_socket()),
                                       name: SocketOptionName(recur_so_peercred()))
    }
}

/// Who may do what, decided once per connection from its peer's credentials: root and members
/// of the admin group act on every stream and are not held to per-user limits; everyone else
/// owns the streams they create and is limited.
struct AccessPolicy: Sendable {
    /// The admin group's gid, if `--admin-group` was given.
    let adminGroup: UInt32?

    /// The policy for the admin group named `name` (none when nil).
    /// - Throws: `ConfigurationError` when no group has that name.
    init(adminGroupNamed name: String?) throws(ConfigurationError) {
        guard let name else {
            adminGroup = nil
            return
        }
        guard let gid = Self.groupID(name) else {
            throw ConfigurationError("there is no group named '\(name)' (--admin-group); create it or name an existing group")
        }
        adminGroup = gid
    }

    /// The gid of the group `name`, nil when there is none.
    static func groupID(_ name: String) -> UInt32? {
        var gid: UInt32 = 0
        return recur_group_id(name, &gid) == 0 ? gid : nil
    }

    /// The engine caller for a peer. Group membership is the peer's primary gid or the user
    /// database's supplementary groups for its uid, looked up now (at connect time).
    func caller(for peer: PeerCredentials) -> Caller {
        let admin = peer.uid == 0 || adminGroup.map { recur_user_in_group(peer.uid, peer.gid, $0) == 1 } ?? false
        return Caller(uid: peer.uid, actsOnAll: admin, exemptFromLimits: admin)
    }
}
