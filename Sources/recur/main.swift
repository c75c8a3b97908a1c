import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

LoggingSystem.bootstrap(CLILogHandler.init(label:))
exit(Recur.runMain())
