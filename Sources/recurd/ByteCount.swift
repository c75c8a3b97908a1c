import ArgumentParser

/// A size in bytes as a user writes it on the command line: `1048576`, `64K`, `64KiB`, `1M`,
/// `1MiB` (K and M are binary, 1024 and 1024², as for buffer sizes everywhere).
struct ByteCount: ExpressibleByArgument, CustomStringConvertible {
    var bytes: Int

    init(bytes: Int) { self.bytes = bytes }

    init?(argument: String) {
        let units: [(String, Int)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30),
                                      ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("B", 1)]
        var digits = Substring(argument)
        var scale = 1
        for (suffix, value) in units where argument.uppercased().hasSuffix(suffix.uppercased()) {
            digits = argument.dropLast(suffix.count)
            scale = value
            break
        }
        guard let count = Int(digits), count >= 0 else { return nil }
        let (product, overflow) = count.multipliedReportingOverflow(by: scale)
        guard !overflow else { return nil }
        bytes = product
    }

    /// `1 MiB`, `64 KiB` or `1000 bytes`: the way --help shows defaults.
    var description: String {
        if bytes >= 1 << 20, bytes % (1 << 20) == 0 { return "\(bytes >> 20)MiB" }
        if bytes >= 1 << 10, bytes % (1 << 10) == 0 { return "\(bytes >> 10)KiB" }
        return "\(bytes)"
    }

    var defaultValueDescription: String { description }
}
