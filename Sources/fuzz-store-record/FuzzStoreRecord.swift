import RecurFuzzing

/// libFuzzer's entry point for the state store's snapshot record decoder (built only by scripts/fuzz).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzStoreRecord(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    StoreRecordFuzzer.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}
