import RecurFuzzing

/// libFuzzer's entry point for the request path (built only by scripts/fuzz).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProtocol(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    ProtocolFuzzer.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
