import NIOCore

/// Runs a task's jobs on one NIO event loop, so that a connection's task and its channel live
/// on the same thread: a line the event loop decodes resumes the task without waking another
/// thread, and the task's writes reach the channel without a hop back. Used as the task
/// executor preference of each connection's task (SE-0417).
///
/// The loop must not block: the work a connection's task does between awaits is parsing and
/// encoding, a few microseconds; model steps run on the engine's own thread.
@available(macOS 15.0, *)
public final class EventLoopTaskExecutor: TaskExecutor {
    public let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
