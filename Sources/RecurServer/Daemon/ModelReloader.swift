import Dispatch
import Logging
import RecurCore
import RecurEngine
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// Reloads the model file on SIGHUP: loads and validates it again and, when it is compatible
/// with the one serving (same vocabulary and state shape), swaps it into the engine between two
/// steps without dropping a stream. A file that cannot be loaded, or an incompatible model, is
/// refused with an error in the log and the old model keeps serving.
public struct ModelReloader: Service {
    let path: String
    let daemon: DaemonHandle
    let observer: any DaemonObserver
    let logger: Logger

    /// Reloads `path` into `daemon`'s engine on each SIGHUP, telling `observer`.
    public init(path: String, daemon: DaemonHandle, observer: any DaemonObserver, logger: Logger) {
        self.path = path
        self.daemon = daemon
        self.observer = observer
        self.logger = logger
    }

    /// Waits for SIGHUP until graceful shutdown.
    public func run() async throws {
        let hangups = Self.signals(SIGHUP)
        await withGracefulShutdownHandler {
            for await _ in hangups.stream {
                await reload()
            }
        } onGracefulShutdown: {
            hangups.finish()
        }
    }

    /// One reload; never throws (a refusal is logged and reported to the observer).
    public func reload() async {
        observer.reloading(daemon)
        logger.notice("reloading the model '\(path)'")
        let outcome: ReloadOutcome
        do {
            let model = try Model(contentsOf: path)
            try await daemon.engine.replaceModel(model)
            outcome = .replaced
            logger.notice("reloaded the model '\(path)': \(model.config.cell.rawValue) \(model.config.layers)×\(model.config.hiddenSize); every stream kept its state")
        } catch let error as EngineError {
            outcome = .refused("the model '\(path)' was refused: \(error.description); the previous model keeps serving")
        } catch let error as RecurError {
            outcome = .refused("the model '\(path)' could not be loaded: \(error.sentence); the previous model keeps serving")
        } catch {
            outcome = .refused("the model '\(path)' could not be loaded: \(error); the previous model keeps serving")
        }
        if case .refused(let reason) = outcome { logger.error("\(reason)") }
        observer.reloaded(outcome, daemon: daemon)
    }

    /// `signal`'s deliveries as a stream (the default action, termination, is turned off).
    static func signals(_ signal: Int32) -> (stream: AsyncStream<Void>, finish: @Sendable () -> Void) {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        Glibc.signal(signal, SIG_IGN)
        let source = SignalSource(DispatchSource.makeSignalSource(signal: signal))
        source.source.setEventHandler { continuation.yield() }
        source.source.resume()
        continuation.onTermination = { _ in source.source.cancel() }
        return (stream, { continuation.finish() })
    }
}

/// A dispatch signal source crossing into the stream's termination handler; it is only
/// resumed once and cancelled once, both thread-safe in Dispatch.
private final class SignalSource: @unchecked Sendable {
    let source: any DispatchSourceSignal
    init(_ source: any DispatchSourceSignal) { self.source = source }
}
