#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The logging backend is chosen in `Recurd.run()`, once --log-level is known.
exit(await Recurd.runMain())
