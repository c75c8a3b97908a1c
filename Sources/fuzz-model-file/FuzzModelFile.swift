import RecurFuzzing

/// libFuzzer's entry point for the model-file loader (built only by scripts/fuzz).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzModelFile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    ModelFileFuzzer.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
