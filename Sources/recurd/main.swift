#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The logging backend is chosen in `Recurd.runMain()`, once the command line is parsed.
exit(await Recurd.runMain())
