import CSystemd

#if canImport(Glibc)
import Glibc
#endif

/// A descriptor systemd passed at start (socket activation or the fd store), with its name:
/// `FileDescriptorName=` of the socket unit, the FDNAME= it was stored under, or "unknown".
public struct ListenedDescriptor: Sendable, Equatable {
    /// The descriptor, from 3 (`SD_LISTEN_FDS_START`) on; close-on-exec is set.
    public var descriptor: Int32
    /// Its name.
    public var name: String

    /// Memberwise.
    public init(descriptor: Int32, name: String) {
        self.descriptor = descriptor
        self.name = name
    }
}

/// The descriptors this process was started with by systemd (sd_listen_fds_with_names(3)).
public enum ListenedDescriptors {
    /// Takes the passed descriptors, once: the `LISTEN_*` variables are removed so that child
    /// processes do not think the descriptors are theirs. Empty outside socket activation.
    public static func take() -> [ListenedDescriptor] {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let count = sd_listen_fds_with_names(1, &names)
        guard count > 0 else { return [] }
        defer {
            if let names {
                for i in 0..<Int(count) { free(names[i]) }
                free(names)
            }
        }
        return (0..<Int(count)).map { i in
            let name = names?[i].map { String(cString: $0) } ?? "unknown"
            return ListenedDescriptor(descriptor: SD_LISTEN_FDS_START + Int32(i), name: name)
        }
    }
}
