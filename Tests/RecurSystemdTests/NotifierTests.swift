import Foundation
import XCTest
@testable import RecurSystemd

/// The notifier against a real datagram socket standing in for systemd's $NOTIFY_SOCKET, and
/// the passed-descriptor parsing against a real LISTEN_* environment.
final class NotifierTests: XCTestCase {
    func test_withoutNotifySocket_everyCallIsANoOp() {
        unsetenv("NOTIFY_SOCKET")
        let notifier = SystemdNotifier()
        XCTAssertFalse(notifier.isEnabled)
        XCTAssertFalse(notifier.ready(status: "x"))
        XCTAssertFalse(notifier.watchdogPing())
        XCTAssertNil(notifier.watchdogInterval)
        XCTAssertFalse(notifier.store([0], name: "x"))
    }

    func test_notify_sendsAssignmentsToNotifySocket_andStoresDescriptorsWithName() throws {
        let path = NSTemporaryDirectory() + "recur-notify-\(getpid()).sock"
        unlink(path)
        let receiver = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(receiver, 0)
        defer { close(receiver); unlink(path) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            path.utf8CString.withUnsafeBytes { raw.copyMemory(from: $0) }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(receiver, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(bound, 0)
        var on: Int32 = 1
        setsockopt(receiver, SOL_SOCKET, SO_PASSCRED, &on, socklen_t(MemoryLayout<Int32>.size))
        setenv("NOTIFY_SOCKET", path, 1)
        defer { unsetenv("NOTIFY_SOCKET") }
        let notifier = SystemdNotifier()
        XCTAssertTrue(notifier.isEnabled)

        XCTAssertTrue(notifier.ready(status: "serving 2 streams\nsecond line"))
        XCTAssertEqual(receive(receiver).text, "READY=1\nSTATUS=serving 2 streams second line")

        XCTAssertTrue(notifier.reloading(status: "reloading"))
        let reloading = receive(receiver).text
        XCTAssertTrue(reloading.hasPrefix("RELOADING=1\nMONOTONIC_USEC="), reloading)

        XCTAssertTrue(notifier.extendTimeout(by: .milliseconds(1500)))
        XCTAssertEqual(receive(receiver).text, "EXTEND_TIMEOUT_USEC=1500000")

        var pipeEnds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&pipeEnds), 0)
        defer { close(pipeEnds[0]); close(pipeEnds[1]) }
        XCTAssertTrue(notifier.store([pipeEnds[0]], name: "conn-7"))
        let stored = receive(receiver)
        XCTAssertEqual(stored.text, "FDSTORE=1\nFDNAME=conn-7")
        XCTAssertEqual(stored.descriptors.count, 1, "the descriptor travels with the message")
        stored.descriptors.forEach { close($0) }

        XCTAssertTrue(notifier.removeStored(name: "conn-7"))
        XCTAssertEqual(receive(receiver).text, "FDSTOREREMOVE=1\nFDNAME=conn-7")
    }

    func test_watchdogInterval_readsWatchdogUsecForThisProcess() {
        setenv("WATCHDOG_USEC", "4000000", 1)
        setenv("WATCHDOG_PID", "\(getpid())", 1)
        XCTAssertEqual(SystemdNotifier().watchdogInterval, .seconds(4))
        setenv("WATCHDOG_PID", "\(getpid() + 1)", 1)
        XCTAssertNil(SystemdNotifier().watchdogInterval, "another process's watchdog")
        unsetenv("WATCHDOG_USEC")
        unsetenv("WATCHDOG_PID")
    }

    func test_listenedDescriptors_whenMeantForAnotherProcess_returnsNoneAndClearsVariables() {
        // The positive case (names, descriptors from 3) runs under systemd-socket-activate and
        // a real systemd: RecurdTests' SocketActivationTests and SystemdHarnessTests.
        setenv("LISTEN_PID", "\(getpid() + 1)", 1)
        setenv("LISTEN_FDS", "1", 1)
        XCTAssertEqual(ListenedDescriptors.take(), [], "descriptors meant for another process")
        XCTAssertNil(getenv("LISTEN_FDS"), "taken once: the variables are removed")
    }

    func test_fileDescriptorName_followsSystemdRules() {
        XCTAssertTrue(FileDescriptorName.isValid("recurd"))
        XCTAssertTrue(FileDescriptorName.isValid("conn-12"))
        XCTAssertFalse(FileDescriptorName.isValid(""))
        XCTAssertFalse(FileDescriptorName.isValid("a:b"))
        XCTAssertFalse(FileDescriptorName.isValid("a b"))
        XCTAssertFalse(FileDescriptorName.isValid(String(repeating: "x", count: 256)))
    }

    private func receive(_ fd: Int32) -> (text: String, descriptors: [Int32]) {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var control = [UInt8](repeating: 0, count: 256)
        return buffer.withUnsafeMutableBytes { data in
            control.withUnsafeMutableBytes { controlBytes in
                var vector = iovec(iov_base: data.baseAddress, iov_len: data.count)
                return withUnsafeMutablePointer(to: &vector) { vectorPointer in
                    var message = msghdr()
                    message.msg_iov = vectorPointer
                    message.msg_iovlen = 1
                    message.msg_control = controlBytes.baseAddress
                    message.msg_controllen = controlBytes.count
                    var tv = timeval(tv_sec: 2, tv_usec: 0)
                    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                    let n = recvmsg(fd, &message, 0)
                    guard n > 0 else { return ("", []) }
                    var descriptors: [Int32] = []
                    var header = UnsafeMutablePointer<cmsghdr>(OpaquePointer(controlBytes.baseAddress))
                    var remaining = Int(message.msg_controllen)
                    while let h = header, remaining >= MemoryLayout<cmsghdr>.size, Int(h.pointee.cmsg_len) <= remaining {
                        if h.pointee.cmsg_level == SOL_SOCKET && h.pointee.cmsg_type == Int32(SCM_RIGHTS) {
                            let payload = UnsafeRawPointer(h) + MemoryLayout<cmsghdr>.stride
                            let count = (Int(h.pointee.cmsg_len) - MemoryLayout<cmsghdr>.stride) / 4
                            for i in 0..<count { descriptors.append(payload.load(fromByteOffset: i * 4, as: Int32.self)) }
                        }
                        let step = (Int(h.pointee.cmsg_len) + 7) & ~7
                        remaining -= step
                        header = remaining > 0 ? UnsafeMutablePointer<cmsghdr>(OpaquePointer(UnsafeRawPointer(h) + step)) : nil
                    }
                    return (String(decoding: data[..<n], as: UTF8.self), descriptors)
                }
            }
        }
    }
}
