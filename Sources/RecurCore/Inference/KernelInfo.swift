import CRecurKernels
#if canImport(Glibc)
import Glibc
#endif

/// What the inference kernels run on, for benchmark reports and logs: the CPU's model name and
/// the instruction-set path each kernel family chose at load time.
public enum KernelInfo {
    /// `model name` from /proc/cpuinfo ("unknown" where there is none).
    public static let cpuModel: String = {
        guard let file = fopen("/proc/cpuinfo", "r") else { return "unknown" }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 512)
        while fgets(&buffer, Int32(buffer.count), file) != nil {
            let line = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard line.hasPrefix("model name"), let colon = line.firstIndex(of: ":") else { continue }
            return String(line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" }.prefix { $0 != "\n" })
        }
        return "unknown"
    }()

    /// The fp32 products' path (`recur_packed_gemm`): "avx512", "avx2" or "scalar".
    public static var fp32Path: String { Precision.fp32.kernelPath }

    /// The bf16 and int8 products' path: "avx2" or "scalar".
    public static var reducedPrecisionPath: String { Precision.bf16.kernelPath }
}
