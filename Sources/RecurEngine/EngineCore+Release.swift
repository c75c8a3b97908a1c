import Foundation

/// Letting go of streams another process will serve (a cluster node losing or handing off key
/// groups): the engine drops them from memory once their queued requests are done, saving a
/// checkpoint of each first when asked. New requests for them are refused meanwhile by the
/// store (`StreamStore.refusal(for:)`), so the set only shrinks.
extension EngineCore {
    /// One `release` in progress.
    struct Release {
        /// The streams to let go of, by name.
        let matches: @Sendable (String) -> Bool
        /// Save a checkpoint of each before dropping it (a graceful hand-off); otherwise drop
        /// it as it is (a lost lease: the store refuses this process's writes anyway, and holds
        /// every acknowledged token in its log).
        let save: Bool
        /// Called once no stream matching is in memory, or the engine stopped.
        let done: @Sendable () -> Void
    }

    /// How often the sweep runs while a release is in progress.
    static let releasePollInterval = 0.01

    /// Queues a release and wakes the engine thread to start it.
    func release(_ release: Release) {
        lock.lock()
        guard phase == .idle || phase == .running else {
            lock.unlock()
            release.done()
            return
        }
        releases.append(release)
        nextSweep = 0
        lock.broadcast()
        lock.unlock()
    }

    /// Drops or stores every idle stream a release matches; a release whose streams are all
    /// gone is done (its callback joins `callbacks`, called after the lock is released). Busy
    /// streams (requests queued, a load or a save in flight) are looked at again next sweep.
    /// Under the lock.
    func processReleases(into callbacks: inout [@Sendable () -> Void]) {
        guard !releases.isEmpty else { return }
        var left: [Release] = []
        for release in releases {
            var remaining = false
            for record in Array(registry.streams.values) where release.matches(record.name) {
                switch record.residency {
                case .resident where record.jobs.isEmpty && !record.isActive:
                    if release.save, store != nil {
                        moveToStore(record)
                        remaining = true
                    } else {
                        registry.remove(record)
                        streamsReleased += 1
                    }
                case .gone where record.jobs.isEmpty:
                    registry.remove(record)
                default:
                    remaining = true
                }
            }
            if remaining { left.append(release) } else { callbacks.append(release.done) }
        }
        releases = left
    }
}
