import CRecurPeer
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The C shim's group lookups, against this system's user database (root and nobody exist on
/// every Linux system).
final class GroupLookupTests: XCTestCase {
    func test_groupID_ofRootGroup_isZero_andAMissingGroupFails() {
        var gid: UInt32 = 99
        XCTAssertEqual(recur_group_id("root", &gid), 0)
        XCTAssertEqual(gid, 0)
        XCTAssertEqual(recur_group_id("no-such-group-recur", &gid), -1)
    }

    func test_userInGroup_byPrimaryGroup_supplementaryGroups_andUnknownUser() throws {
        XCTAssertEqual(recur_user_in_group(0, 0, 0), 1, "root's primary group")
        guard let nobody = getpwnam("nobody") else { throw XCTSkip("no user 'nobody'") }
        let uid = nobody.pointee.pw_uid, gid = nobody.pointee.pw_gid
        XCTAssertEqual(recur_user_in_group(uid, gid, gid), 1)
        XCTAssertEqual(recur_user_in_group(uid, gid, 0), 0, "nobody is not in the root group")
        // Any group listed with nobody as a member counts even when it is not the primary one.
        var groupList = [gid_t](repeating: 0, count: 64)
        var count: Int32 = 64
        if getgrouplist(nobody.pointee.pw_name, gid, &groupList, &count) >= 0 {
            for group in groupList.prefix(Int(count)) {
                XCTAssertEqual(recur_user_in_group(uid, gid, group), 1, "group \(group)")
            }
        }
        XCTAssertEqual(recur_user_in_group(4_000_000_123, 0, 0), 1, "the primary gid decides even for a uid the database lacks")
        XCTAssertEqual(recur_user_in_group(4_000_000_123, 7, 0), -1, "an unknown uid has no supplementary groups to look up")
    }

    func test_peerCredentialOptionNames_areLinuxs() {
        #if os(Linux)
        XCTAssertEqual(recur_sol_socket(), 1)
        XCTAssertEqual(recur_so_peercred(), 17)
        XCTAssertEqual(MemoryLayout<recur_ucred>.size, 12)
        #endif
    }
}
